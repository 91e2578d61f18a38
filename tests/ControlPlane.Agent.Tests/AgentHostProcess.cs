using ControlPlane.Tests.Support;

namespace ControlPlane.Agent.Tests;

/// <summary>Starts the cp-agent executable (built next to this test project) as a real child process.</summary>
public static class AgentHostProcess
{
    public static ObservedProcess Start(params string[] args) => ObservedProcess.Start("cp-agent", "dotnet", [HostPath(), .. args]);

    public static string HostPath()
    {
        // tests/ControlPlane.Agent.Tests/bin/<Configuration>/<tfm>/ -> src/ControlPlane.Agent.Host/bin/<Configuration>/<tfm>/cp-agent.dll
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var path = Path.Combine(TestEnvironment.RepositoryRoot, "src", "ControlPlane.Agent.Host", "bin", configuration, testBin.Name, "cp-agent.dll");
        Assert.True(File.Exists(path), $"cp-agent not built at {path}; build tests/ControlPlane.Agent.Tests, which builds it");
        return path;
    }
}
