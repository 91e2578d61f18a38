using System.Diagnostics;
using System.Text;

namespace ControlPlane.Agent.Tests;

/// <summary>Runs the cp-agent executable (built next to this test project) as a real child process.</summary>
public sealed class AgentHostProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private AgentHostProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static AgentHostProcess Start(params string[] args)
    {
        var startInfo = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add(HostPath());
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = startInfo };
        var host = new AgentHostProcess(process);
        process.ErrorDataReceived += (_, e) =>
        {
            lock (host._stderr)
            {
                host._stderr.AppendLine(e.Data);
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return host;
    }

    public async Task<int> WaitForExitAsync()
    {
        await _process.WaitForExitAsync().WithTimeout();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    public static string HostPath()
    {
        // tests/ControlPlane.Agent.Tests/bin/<Configuration>/net10.0/ -> src/ControlPlane.Agent.Host/bin/<Configuration>/net10.0/cp-agent.dll
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var repo = testBin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var path = Path.Combine(repo, "src", "ControlPlane.Agent.Host", "bin", configuration, testBin.Name, "cp-agent.dll");
        Assert.True(File.Exists(path), $"cp-agent not built at {path}; build tests/ControlPlane.Agent.Tests, which builds it");
        return path;
    }
}
