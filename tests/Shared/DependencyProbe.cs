using System.Reflection;
using System.Xml.Linq;

namespace ControlPlane.Tests.Support;

/// <summary>Walks an assembly's references, transitively, the way the runtime would load them.</summary>
public static class DependencyProbe
{
    /// <summary>Every assembly name <paramref name="root"/> references directly or through the assemblies it references.</summary>
    public static IReadOnlySet<string> TransitiveReferences(Assembly root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<AssemblyName>(root.GetReferencedAssemblies());
        while (pending.TryPop(out var name))
        {
            if (name.Name is null || !seen.Add(name.Name))
            {
                continue;
            }

            Assembly loaded;
            try
            {
                loaded = Assembly.Load(name);
            }
            catch (FileNotFoundException)
            {
                // Not loadable from this test's output: still recorded by name above.
                continue;
            }

            foreach (var reference in loaded.GetReferencedAssemblies())
            {
                pending.Push(reference);
            }
        }

        return seen;
    }

    /// <summary>
    /// The shared frameworks (FrameworkReference) a project under src/ asks for, itself or through its project references:
    /// a library that names Microsoft.AspNetCore.App drags the server framework into every application using it.
    /// </summary>
    public static IReadOnlySet<string> FrameworkReferences(string project)
    {
        var frameworks = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([Path.Combine(TestEnvironment.RepositoryRoot, "src", project, project + ".csproj")]);
        while (pending.TryPop(out var path))
        {
            path = Path.GetFullPath(path);
            if (!seen.Add(path))
            {
                continue;
            }

            var xml = XDocument.Load(path);
            foreach (var element in xml.Descendants("FrameworkReference"))
            {
                frameworks.Add((string)element.Attribute("Include")!);
            }

            foreach (var element in xml.Descendants("ProjectReference"))
            {
                pending.Push(Path.Combine(Path.GetDirectoryName(path)!, (string)element.Attribute("Include")!));
            }
        }

        return frameworks;
    }
}
