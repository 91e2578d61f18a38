namespace ControlPlane.Interop;

/// <summary>The compressed flag of each gRPC message seen on one stream, in order.</summary>
internal sealed class GrpcFrameLog
{
    private readonly List<bool> _compressed = new();

    public void Add(bool compressed)
    {
        lock (_compressed)
        {
            _compressed.Add(compressed);
        }
    }

    /// <summary>A copy of the flags seen so far.</summary>
    public IReadOnlyList<bool> Snapshot()
    {
        lock (_compressed)
        {
            return _compressed.ToArray();
        }
    }

    /// <summary>Whether message number <paramref name="index"/> (0-based) arrived compressed; null if not seen.</summary>
    public bool? IsCompressed(int index)
    {
        lock (_compressed)
        {
            return index < _compressed.Count ? _compressed[index] : null;
        }
    }
}
