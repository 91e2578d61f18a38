using System.Globalization;
using System.Threading.Channels;

namespace ControlPlane.Bench;

/// <summary>
/// Appends "run step unix-microseconds" per handler start to a file, off the handler's path, so the driver can
/// compute dispatch latency (step READY event -> handler start) after the runs end.
/// </summary>
internal sealed class HandlerStarts : IAsyncDisposable
{
    public const string FileVariable = "BENCH_STARTS_FILE";

    private readonly Channel<string> lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task writer;

    public HandlerStarts(string path)
    {
        writer = Task.Run(() => WriteAsync(path));
    }

    public static long NowMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public void Record(string runId, string stepId) =>
        lines.Writer.TryWrite(string.Create(CultureInfo.InvariantCulture, $"{runId} {stepId} {NowMicros()}"));

    public async ValueTask DisposeAsync()
    {
        lines.Writer.TryComplete();
        await writer.ConfigureAwait(false);
    }

    private async Task WriteAsync(string path)
    {
        await using var file = new StreamWriter(path, append: true);
        while (await lines.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (lines.Reader.TryRead(out var line))
            {
                await file.WriteLineAsync(line).ConfigureAwait(false);
            }

            // Flush whenever the backlog is empty, so the driver sees every start soon after the last step ends.
            await file.FlushAsync().ConfigureAwait(false);
        }
    }
}
