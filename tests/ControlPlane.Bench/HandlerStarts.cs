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

    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    public HandlerStarts(string path)
    {
        _writer = Task.Run(() => WriteAsync(path));
    }

    public static long NowMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public void Record(string runId, string stepId) =>
        _lines.Writer.TryWrite(string.Create(CultureInfo.InvariantCulture, $"{runId} {stepId} {NowMicros()}"));

    public async ValueTask DisposeAsync()
    {
        _lines.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    private async Task WriteAsync(string path)
    {
        await using var file = new StreamWriter(path, append: true);
        while (await _lines.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (_lines.Reader.TryRead(out var line))
            {
                await file.WriteLineAsync(line).ConfigureAwait(false);
            }

            // Flush whenever the backlog is empty, so the driver sees every start soon after the last step ends.
            await file.FlushAsync().ConfigureAwait(false);
        }
    }
}
