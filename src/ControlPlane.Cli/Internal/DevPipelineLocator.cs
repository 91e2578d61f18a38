namespace ControlPlane.Cli.Internal;

/// <summary>Finds the pipeline file <c>cpctl dev</c> runs: as given from the current directory, else from the repository root.</summary>
internal static class DevPipelineLocator
{
    public const string DefaultPipeline = "examples/hello.yaml";

    private const string RepositoryMarker = "ControlPlane.sln";

    /// <summary>
    /// Resolves <paramref name="path"/> (null: <see cref="DefaultPipeline"/>) against <paramref name="currentDirectory"/>, then
    /// against the folder holding ControlPlane.sln above the current directory or above <paramref name="baseDirectory"/>.
    /// </summary>
    /// <exception cref="CliUsageException">The file exists in none of those places.</exception>
    public static string Resolve(string? path, string currentDirectory, string baseDirectory)
    {
        var wanted = path ?? DefaultPipeline;
        var direct = Path.GetFullPath(wanted, currentDirectory);
        if (File.Exists(direct))
        {
            return direct;
        }

        var tried = new List<string> { direct };
        if (!Path.IsPathRooted(wanted))
        {
            foreach (var root in new[] { FindRepositoryRoot(currentDirectory), FindRepositoryRoot(baseDirectory) }.OfType<string>().Distinct(StringComparer.Ordinal))
            {
                var candidate = Path.GetFullPath(wanted, root);
                if (File.Exists(candidate))
                {
                    return candidate;
                }

                tried.Add(candidate);
            }
        }

        var what = path is null ? $"the default pipeline {DefaultPipeline}" : $"pipeline file '{path}'";
        throw new CliUsageException(
            $"{what} was not found (looked at {string.Join(", ", tried.Distinct(StringComparer.Ordinal))}); " +
            "pass the path of a pipeline file, e.g. cpctl dev ./my-pipeline.yaml, or run cpctl dev from the repository");
    }

    /// <summary>The nearest folder at or above <paramref name="start"/> holding ControlPlane.sln; null when there is none.</summary>
    public static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, RepositoryMarker)))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
