using System.Globalization;

namespace ControlPlane.Bench;

/// <summary>Reads the agents' handler-start files incrementally: "run step unix-microseconds" per line.</summary>
internal sealed class StartsLog(IReadOnlyList<string> paths)
{
    private readonly long[] _offsets = new long[paths.Count];
    private readonly Dictionary<(string Run, string Step), long> _starts = [];
    private readonly Dictionary<string, int> _stepsStarted = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<(string Run, string Step), long> Starts => _starts;

    /// <summary>Reads what was appended since the last call; only whole lines are consumed.</summary>
    public void Refresh()
    {
        for (var i = 0; i < paths.Count; i++)
        {
            if (!File.Exists(paths[i]))
            {
                continue;
            }

            using var stream = new FileStream(paths[i], FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(_offsets[i], SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            var end = text.LastIndexOf('\n');
            if (end < 0)
            {
                continue;
            }

            foreach (var line in text[..end].Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ');
                if (_starts.TryAdd((parts[0], parts[1]), 0))
                {
                    _stepsStarted[parts[0]] = _stepsStarted.GetValueOrDefault(parts[0]) + 1;
                }

                _starts[(parts[0], parts[1])] = long.Parse(parts[2], CultureInfo.InvariantCulture);
            }

            _offsets[i] += System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, end + 1));
        }
    }

    /// <summary>How many of the given runs' steps have started at least once.</summary>
    public int CountStarted(IReadOnlySet<string> runIds) => runIds.Sum(run => _stepsStarted.GetValueOrDefault(run));
}
