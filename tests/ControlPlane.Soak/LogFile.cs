using System.Globalization;
using System.Text;

namespace ControlPlane.Soak;

/// <summary>
/// A log file lines are appended to from any thread, each stamped with the UTC time to the millisecond, so the logs of
/// the processes and the driver's own journal can be laid side by side. Flushed line by line: a soak that is killed
/// keeps everything it wrote.
/// </summary>
internal sealed class LogFile : TextWriter
{
    private readonly object _gate = new();
    private readonly StreamWriter _writer;

    public LogFile(string path)
    {
        Path = path;
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false)) { AutoFlush = true };
    }

    public string Path { get; }

    public override Encoding Encoding => _writer.Encoding;

    public static string Now() => DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            _writer.Write(Now());
            _writer.Write(' ');
            _writer.WriteLine(value);
        }
    }

    public override void Write(char value)
    {
        lock (_gate)
        {
            _writer.Write(value);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _writer.Dispose();
            }
        }

        base.Dispose(disposing);
    }
}
