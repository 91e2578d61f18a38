using System.CommandLine;
using System.Globalization;
using System.Text;
using ControlPlane.Client;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl top</c>: queues, caps, agents and running steps, refreshed until Ctrl+C.</summary>
internal static class TopCommand
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(60);

    public static Command Build(CommandHandlers handlers)
    {
        var command = new Command(
            "top",
            "Show queues (ready, running, dispatch latency), caps in use, agents and running steps with their progress, refreshed until Ctrl+C. " +
            "On a terminal the tables are redrawn in place; under a pipe (or with --plain) each refresh prints a block of key=value lines.");
        var interval = new Option<string>("--interval") { Description = "Time between refreshes: seconds (2, 0.5s) or milliseconds (500ms), from 0.2s to 60s.", HelpName = "DURATION", DefaultValueFactory = _ => "2s" };
        var once = new Option<bool>("--once") { Description = "Print one snapshot and exit." };
        var plain = new Option<bool>("--plain") { Description = "Print plain key=value lines even on a terminal." };
        command.Options.Add(interval);
        command.Options.Add(once);
        command.Options.Add(plain);
        handlers.Handle(command, async (inv, ct) =>
        {
            var every = ParseInterval(inv.Get(interval)!);
            if (inv.Json)
            {
                throw new CliUsageException("cpctl top has no JSON output; use --plain for key=value lines, or 'cpctl agents ls -o json' and 'cpctl run ls -o json'");
            }

            var interactive = !inv.Get(plain) && ReferenceEquals(inv.Out, Console.Out) && !Console.IsOutputRedirected;
            using var client = inv.CreateClient();

            // The first snapshot fails like any other command when the scheduler cannot be reached; later ones say so and retry.
            var first = await TopSnapshot.LoadAsync(client, TimeProvider.System, ct).ConfigureAwait(false);
            try
            {
                if (interactive)
                {
                    var live = new LiveTopView(inv.Out, inv.SchedulerAddress);
                    if (inv.Get(once))
                    {
                        live.WriteOnce(first);
                        return ExitCodes.Success;
                    }

                    await live.RunAsync(async show =>
                    {
                        show(first, null);
                        await RefreshAsync(client, first, every, show, ct).ConfigureAwait(false);
                    }).ConfigureAwait(false);
                }
                else
                {
                    using var stdout = ReferenceEquals(inv.Out, Console.Out) && Console.IsOutputRedirected ? OpenStandardOutput() : null;
                    var output = stdout ?? inv.Out;
                    PlainTopView.Write(output, first);
                    if (inv.Get(once))
                    {
                        return ExitCodes.Success;
                    }

                    await RefreshAsync(
                        client,
                        first,
                        every,
                        (snapshot, problem) =>
                        {
                            if (problem is null)
                            {
                                PlainTopView.Write(output, snapshot!);
                            }
                            else
                            {
                                PlainTopView.WriteProblem(output, DateTimeOffset.UtcNow, problem);
                            }
                        },
                        ct).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ct.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Ctrl+C is how top is meant to end.
            }
            catch (IOException) when (!interactive && ReferenceEquals(inv.Out, Console.Out))
            {
                // The reader of the pipe went away (cpctl top | head): nobody is left to show a refresh to.
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// The process's stdout as a plain stream. Console.Out drops writes to a pipe whose reader has gone and SIGPIPE is
    /// ignored, so <c>cpctl top | head</c> would refresh forever into nothing; this stream fails with an IOException instead.
    /// </summary>
    private static StreamWriter OpenStandardOutput() =>
        new(new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));

    /// <summary>2, 2s, 0.5s or 500ms, within <see cref="MinInterval"/> and <see cref="MaxInterval"/>.</summary>
    public static TimeSpan ParseInterval(string text)
    {
        var trimmed = text.Trim();
        var (number, unit) = trimmed.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (trimmed[..^2], 0.001)
            : trimmed.EndsWith('s') || trimmed.EndsWith('S') ? (trimmed[..^1], 1.0)
            : (trimmed, 1.0);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw new CliUsageException($"--interval '{text}' is not a duration; use seconds or milliseconds, e.g. --interval 2s, --interval 0.5 or --interval 500ms");
        }

        var interval = TimeSpan.FromSeconds(value * unit);
        if (interval < MinInterval || interval > MaxInterval)
        {
            throw new CliUsageException($"--interval '{text}' is out of range; use a value from 0.2s to 60s, e.g. --interval 2s");
        }

        return interval;
    }

    /// <summary>
    /// Loads a snapshot every <paramref name="interval"/> and shows it. A refresh that cannot reach the scheduler is
    /// shown as a problem beside the last snapshot, and the next refresh tries again; other failures end the command.
    /// </summary>
    private static async Task RefreshAsync(ControlPlaneClient client, TopSnapshot first, TimeSpan interval, Action<TopSnapshot?, string?> show, CancellationToken cancellationToken)
    {
        var last = first;
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                last = await TopSnapshot.LoadAsync(client, TimeProvider.System, cancellationToken).ConfigureAwait(false);
                show(last, null);
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested && ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                show(last, Cpctl.Describe(ex));
            }
        }
    }
}
