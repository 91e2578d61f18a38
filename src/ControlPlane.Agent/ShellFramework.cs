using System.Diagnostics;
using System.Globalization;
using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Agent;

/// <summary>
/// The "shell" framework: runs <c>/bin/sh -c &lt;command&gt;</c> in its own process group and work
/// directory, reads "::cp" commands from stdout, and kills the whole process tree on cancel or timeout, and
/// when the agent itself dies. Linux only (process groups and /proc).
/// </summary>
public sealed partial class ShellFramework : IComputeFramework
{
    /// <summary>Largest inline output or checkpoint, 1 MiB.</summary>
    public const int MaxInlineBytes = 1 << 20;

    /// <summary>Longest log line, in bytes of UTF-8; a longer line is cut as it is read and the rest of it dropped.</summary>
    internal const int MaxLogLineBytes = 16 * 1024;
    private const int StderrTailLines = 5;
    /// <summary>
    /// Run by /bin/sh as the step's process group leader, with $1 the step's command, $2 the kill grace in seconds and
    /// $3 how long the agent may stay silent, in seconds (0: no limit). It starts a watchdog in the group (outside the
    /// step's process tree, so nothing of the step waits for it) that reads the agent's end of a pipe on stdin. The
    /// kernel closes it when the agent dies, even by SIGKILL: the watchdog then sends the group SIGTERM and, after the
    /// grace, SIGKILL. The agent also writes a line to it every quarter of $3; when none comes for $3 seconds the agent
    /// is frozen (SIGSTOP, a stalled host) and its lease about to pass to another attempt, so the group gets SIGKILL at
    /// once. A pipe rather than polling the agent's pid: nothing to poll, and a reused pid cannot look like a live
    /// agent. The step gets stdin from /dev/null (end-of-file at once, as before) and runs as "/bin/sh -c $1" under the
    /// leader's pid.
    /// </summary>
    private const string Watchdog = """
        exec 3<&0 </dev/null
        ( {
            if [ "$3" = 0 ]; then
              while read -r _ <&3; do :; done; rc=0
            else
              while :; do l=$(timeout --foreground "$3" head -n 1 <&3); rc=$?; [ "$rc" = 0 ] && [ -n "$l" ] || break; done
            fi
            if [ "$rc" = 124 ]; then kill -KILL 0; fi
            trap '' TERM; kill -TERM 0; sleep "$2"; kill -KILL 0;
          } >/dev/null 2>&1 & )
        exec /bin/sh -c "$1" 3<&-
        """;

    /// <summary>Mode of every directory the framework makes for an attempt: only the agent's user may enter.</summary>
    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly TimeSpan _killGracePeriod;
    private readonly ILogger _logger;
    private readonly IReadOnlyCollection<string> _passEnvironment;

    /// <summary>Creates the framework.</summary>
    /// <param name="killGracePeriod">Time between SIGTERM and SIGKILL when a step is stopped. Default is 5 s.</param>
    /// <param name="logger">Where the framework logs; none by default.</param>
    /// <param name="passEnvironment">
    /// Agent environment variables steps also get besides PATH, HOME, LANG and TZ (a trailing '*' matches a prefix);
    /// CP_ variables never pass. None by default.
    /// </param>
    public ShellFramework(TimeSpan? killGracePeriod = null, ILogger<ShellFramework>? logger = null, IReadOnlyCollection<string>? passEnvironment = null)
    {
        _killGracePeriod = killGracePeriod ?? TimeSpan.FromSeconds(5);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _passEnvironment = passEnvironment ?? [];
        foreach (var problem in _passEnvironment.Select(StepEnvironment.Problem).OfType<string>())
        {
            throw new ArgumentException(problem, nameof(passEnvironment));
        }
    }

    /// <summary>The agent's environment steps inherit from (filtered); the process's own unless a test gives another.</summary>
    internal Func<IReadOnlyDictionary<string, string>> AgentEnvironment { get; init; } = StepEnvironment.Process;

    /// <inheritdoc />
    public string Name => "shell";

    /// <inheritdoc />
    public IReadOnlyCollection<string> Handlers => [];

    /// <inheritdoc />
    public async Task<StepResult> RunAsync(StepExecution execution, IStepReporter reporter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(execution);
        ArgumentNullException.ThrowIfNull(reporter);
        if (string.IsNullOrWhiteSpace(execution.Spec.Command))
        {
            return StepResult.Failure($"step '{execution.StepId}' has no command; set 'run' to the shell script to execute", permanent: true);
        }

        var layout = PrepareDirectory(execution);
        var startInfo = new ProcessStartInfo("setsid")
        {
            // setsid execs the shell as leader of a new session and process group (pgid == pid), so one kill(-pgid) reaches the whole tree.
            // The shell first starts the group's watchdog, then execs the step's own shell in its place (same pid, group and exit code).
            ArgumentList =
            {
                "/bin/sh", "-c", Watchdog, "cp-step", execution.Spec.Command,
                _killGracePeriod.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
                SilenceLimit(execution).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
            },
            WorkingDirectory = layout.WorkDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Not the agent's whole environment: it holds the agent's token and settings, which are no step's business.
        var env = startInfo.Environment;
        env.Clear();
        foreach (var (name, value) in StepEnvironment.Select(AgentEnvironment(), _passEnvironment))
        {
            env[name] = value;
        }

        // Secrets after the inherited variables and before the step contract's, which no secret name can replace.
        foreach (var (name, value) in execution.Secrets)
        {
            env[SecretMask.VariableName(name)] = value;
        }

        env["CP_RUN_ID"] = execution.RunId;
        env["CP_STEP_ID"] = execution.StepId;
        env["CP_ATTEMPT"] = execution.Attempt.ToString(CultureInfo.InvariantCulture);
        env["CP_WORK_DIR"] = layout.WorkDir;
        env["CP_INPUTS_DIR"] = layout.InputsDir;
        env["CP_OUTPUT_FILE"] = layout.OutputFile;
        env["CP_PARAMS"] = execution.ParamsJson;
        if (layout.CheckpointFile is not null)
        {
            env["CP_CHECKPOINT_FILE"] = layout.CheckpointFile;
        }

        // The W3C variable OpenTelemetry SDKs and CLI tools read to continue a trace: the step's spans join the run's trace.
        if (execution.TraceParent.Length > 0)
        {
            env["TRACEPARENT"] = execution.TraceParent;
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return StepResult.Failure($"could not start /bin/sh through setsid: {ex.Message}; install util-linux on the agent host");
        }

        var pid = process.Id;
        LogStarted(_logger, execution.RunId, execution.StepId, execution.Attempt, pid);

        // Kept open while the step runs: the watchdog reads end-of-file from it only once the agent is gone, and a
        // line every quarter of the silence limit while the agent is not frozen.
        var agentAlive = process.StandardInput;
        using var keepAliveStop = new CancellationTokenSource();
        var keepAlive = KeepWatchdogAsync(agentAlive, SilenceLimit(execution), keepAliveStop.Token);

        var state = new RunState(layout.WorkDir, reporter);
        var stdout = PumpAsync(process.StandardOutput, LogStream.Stdout, state);
        var stderr = PumpAsync(process.StandardError, LogStream.Stderr, state);

        using var timeoutCts = new CancellationTokenSource();
        if (execution.Timeout is { } timeout)
        {
            timeoutCts.CancelAfter(timeout);
        }

        using var stopCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        var stopped = false;
        try
        {
            await process.WaitForExitAsync(stopCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            stopped = true;
            LogStopping(_logger, execution.RunId, execution.StepId, execution.Attempt, pid, timeoutCts.IsCancellationRequested ? "timeout" : "cancel");
            await StopTreeAsync(process, pid).ConfigureAwait(false);
        }

        // Whatever the shell left behind (background jobs) dies with the step, and their pipes close.
        ProcessGroup.SignalGroup(pid, ProcessGroup.SigKill);
        await keepAliveStop.CancelAsync().ConfigureAwait(false);
        await keepAlive.ConfigureAwait(false);
        CloseQuietly(agentAlive);
        await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
        var usage = state.Usage;

        if (stopped && timeoutCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return StepResult.Failure($"step ran past its timeout of {execution.Timeout} and its process tree was killed", timedOut: true, usage: usage);
        }

        if (stopped)
        {
            return StepResult.Failure("step was cancelled and its process tree was killed", cancelled: true, usage: usage);
        }

        var exitCode = process.ExitCode;
        if (exitCode != 0)
        {
            var tail = state.StderrTail;
            var detail = tail.Length == 0 ? string.Empty : ": " + tail;
            return StepResult.Failure($"command exited with code {exitCode}{detail}", usage: usage);
        }

        var output = RegularFile.Read(layout.OutputFile, MaxInlineBytes);
        switch (output.Status)
        {
            case RegularFile.Status.Missing:
                return StepResult.Success(ReadOnlyMemory<byte>.Empty, usage);
            case RegularFile.Status.NotRegular:
                return StepResult.Failure(
                    $"CP_OUTPUT_FILE is {output.Problem}, not a regular file; write the step's output into the file itself",
                    permanent: true,
                    usage: usage);
            case RegularFile.Status.TooLarge:
                return StepResult.Failure(
                    $"output file is {output.Problem}, more than the {MaxInlineBytes} bytes allowed inline; write large results to storage and output their URI instead",
                    permanent: true,
                    usage: usage);
            case RegularFile.Status.Failed:
                return StepResult.Failure($"could not read CP_OUTPUT_FILE: {output.Problem}", usage: usage);
        }

        return StepResult.Success(output.Data, usage);
    }

    private static Layout PrepareDirectory(StepExecution execution)
    {
        var root = execution.Directory;
        var workDir = Path.Combine(root, "work");
        var inputsDir = Path.Combine(root, "inputs");
        // The attempt's directory and any missing parent (its run's) are made private too.
        CreatePrivateDirectory(workDir);
        CreatePrivateDirectory(inputsDir);
        foreach (var (stepId, input) in execution.Inputs)
        {
            // An input held by reference is given as its URI text; inline inputs as their bytes.
            var bytes = input.Data.Length == 0 && !string.IsNullOrEmpty(input.Uri) ? System.Text.Encoding.UTF8.GetBytes(input.Uri) : input.Data.ToArray();
            File.WriteAllBytes(Path.Combine(inputsDir, stepId), bytes);
        }

        string? checkpointFile = null;
        if (execution.Checkpoint is { } checkpoint)
        {
            checkpointFile = Path.Combine(root, "checkpoint");
            File.WriteAllBytes(checkpointFile, checkpoint.ToArray());
        }

        return new Layout(workDir, inputsDir, Path.Combine(root, "output"), checkpointFile);
    }

    private static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            // Each missing level with the mode: CreateDirectory gives it to the last one only.
            var missing = new Stack<string>();
            for (var dir = Path.GetFullPath(path); !Directory.Exists(dir); dir = Path.GetDirectoryName(dir)!)
            {
                missing.Push(dir);
            }

            while (missing.TryPop(out var dir))
            {
                Directory.CreateDirectory(dir, PrivateDirectory);
            }
        }
    }

    private async Task StopTreeAsync(Process process, int pgid)
    {
        // If setsid has not yet made the group, the group signal finds nothing; signal the process itself too.
        ProcessGroup.SignalGroup(pgid, ProcessGroup.SigTerm);
        ProcessGroup.SignalProcess(pgid, ProcessGroup.SigTerm);
        var deadline = DateTime.UtcNow + _killGracePeriod;
        while (DateTime.UtcNow < deadline && (!process.HasExited || ProcessGroup.HasLiveMembers(pgid)))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(25), CancellationToken.None).ConfigureAwait(false);
        }

        ProcessGroup.SignalGroup(pgid, ProcessGroup.SigKill);
        ProcessGroup.SignalProcess(pgid, ProcessGroup.SigKill);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private async Task PumpAsync(StreamReader reader, LogStream stream, RunState state)
    {
        // Bytes, not the reader's lines: a line is cut as it is read, never buffered whole.
        var lines = new LineReader(reader.BaseStream, MaxLogLineBytes);
        while (await lines.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } line)
        {
            if (stream == LogStream.Stdout && ShellCommand.Parse(line) is { } command)
            {
                HandleCommand(command, line, state);
                continue;
            }

            if (stream == LogStream.Stderr)
            {
                state.AddStderr(line);
            }

            state.Reporter.ReportLog(stream, line);
        }
    }

    private void HandleCommand(ShellCommand command, string line, RunState state)
    {
        switch (command)
        {
            case ShellCommand.Progress progress:
                state.Reporter.ReportProgress(progress.Percent, progress.Message);
                break;
            case ShellCommand.Usage usage:
                state.AddUsage(usage.Amounts);
                break;
            case ShellCommand.Checkpoint checkpoint:
                var path = Path.GetFullPath(checkpoint.Path, state.WorkDir);
                var file = RegularFile.Read(path, MaxInlineBytes);
                switch (file.Status)
                {
                    case RegularFile.Status.Read:
                        state.Reporter.ReportCheckpoint(file.Data);
                        break;
                    case RegularFile.Status.Missing:
                        state.Reporter.ReportLog(LogStream.Stderr, $"::cp checkpoint: no file at '{path}'; write the checkpoint file before announcing it");
                        break;
                    case RegularFile.Status.NotRegular:
                        state.Reporter.ReportLog(LogStream.Stderr, $"::cp checkpoint: '{path}' is {file.Problem}, not a regular file, and was ignored; write the checkpoint into a regular file");
                        break;
                    case RegularFile.Status.TooLarge:
                        state.Reporter.ReportLog(LogStream.Stderr, $"::cp checkpoint: '{path}' holds {file.Problem}, more than the {MaxInlineBytes} bytes allowed, and was ignored; keep checkpoints small");
                        break;
                    default:
                        state.Reporter.ReportLog(LogStream.Stderr, $"::cp checkpoint: could not read '{path}': {file.Problem}");
                        break;
                }

                break;
            case ShellCommand.Invalid invalid:
                LogInvalidCommand(_logger, invalid.Error);
                state.Reporter.ReportLog(LogStream.Stdout, line);
                state.Reporter.ReportLog(LogStream.Stderr, "::cp: " + invalid.Error);
                break;
        }
    }

    /// <summary>How long the agent may stay silent before the watchdog ends the step: half the lease (zero: no limit).</summary>
    internal static TimeSpan SilenceLimit(StepExecution execution) =>
        execution.LeaseDuration is { } lease && lease > TimeSpan.Zero ? TimeSpan.FromMilliseconds(Math.Max(1000, lease.TotalMilliseconds / 2)) : TimeSpan.Zero;

    /// <summary>
    /// Closes the agent's end of the watchdog pipe. A keep-alive line still buffered (its flush was cancelled as the step
    /// ended) is flushed by the close and fails with a broken pipe once the watchdog has gone with the step's group:
    /// that says nothing about the step, whose own exit status decides its result.
    /// </summary>
    private static void CloseQuietly(StreamWriter watchdog)
    {
        try
        {
            watchdog.Close();
        }
        catch (IOException)
        {
            // The watchdog already exited with the step's process group.
        }
    }

    /// <summary>Writes a line to the watchdog every quarter of <paramref name="limit"/> until stopped or the watchdog is gone.</summary>
    private static async Task KeepWatchdogAsync(StreamWriter watchdog, TimeSpan limit, CancellationToken stop)
    {
        if (limit <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(limit / 4);
        try
        {
            do
            {
                await watchdog.WriteLineAsync(".").ConfigureAwait(false);
                await watchdog.FlushAsync(stop).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            // The step ended.
        }
        catch (IOException)
        {
            // The group is gone, watchdog included.
        }
    }

    [LoggerMessage(EventId = 201, Level = LogLevel.Debug, Message = "Shell step {RunId}/{StepId} attempt {Attempt} started as process group {Pgid}")]
    private static partial void LogStarted(ILogger logger, string runId, string stepId, int attempt, int pgid);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "Stopping shell step {RunId}/{StepId} attempt {Attempt} (process group {Pgid}) on {Reason}")]
    private static partial void LogStopping(ILogger logger, string runId, string stepId, int attempt, int pgid, string reason);

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "Ignored malformed step command: {Error}")]
    private static partial void LogInvalidCommand(ILogger logger, string error);

    private sealed record Layout(string WorkDir, string InputsDir, string OutputFile, string? CheckpointFile);

    private sealed class RunState(string workDir, IStepReporter reporter)
    {
        private readonly Dictionary<string, double> _usage = new(StringComparer.Ordinal);
        private readonly Queue<string> _stderrTail = new();

        public string WorkDir { get; } = workDir;

        public IStepReporter Reporter { get; } = reporter;

        public IReadOnlyDictionary<string, double> Usage
        {
            get
            {
                lock (_usage)
                {
                    return new Dictionary<string, double>(_usage, StringComparer.Ordinal);
                }
            }
        }

        public string StderrTail
        {
            get
            {
                lock (_stderrTail)
                {
                    return string.Join(" | ", _stderrTail);
                }
            }
        }

        public void AddUsage(IReadOnlyDictionary<string, double> amounts)
        {
            lock (_usage)
            {
                foreach (var (unit, amount) in amounts)
                {
                    _usage[unit] = _usage.GetValueOrDefault(unit) + amount;
                }
            }
        }

        public void AddStderr(string line)
        {
            lock (_stderrTail)
            {
                _stderrTail.Enqueue(line);
                if (_stderrTail.Count > StderrTailLines)
                {
                    _stderrTail.Dequeue();
                }
            }
        }
    }
}
