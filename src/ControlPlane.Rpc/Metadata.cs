using System.Collections;
using System.Text;

namespace ControlPlane.Rpc;

/// <summary>
/// Call metadata (headers or trailers): an ordered list of key/value entries. Keys are lower-cased;
/// keys ending in "-bin" carry bytes, all others printable ASCII strings.
/// </summary>
public sealed class Metadata : IList<Metadata.Entry>
{
    /// <summary>The suffix that marks a binary entry.</summary>
    public const string BinaryHeaderSuffix = "-bin";

    private readonly List<Entry> _entries = new();

    /// <summary>An empty, read-only-by-convention instance.</summary>
    public static Metadata Empty => new();

    public int Count => _entries.Count;

    public bool IsReadOnly => false;

    public Entry this[int index]
    {
        get => _entries[index];
        set => _entries[index] = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Adds an ASCII entry; the key must not end in "-bin".</summary>
    public void Add(string key, string value) => _entries.Add(new Entry(key, value));

    /// <summary>Adds a binary entry; the key must end in "-bin".</summary>
    public void Add(string key, byte[] value) => _entries.Add(new Entry(key, value));

    public void Add(Entry item) => _entries.Add(item ?? throw new ArgumentNullException(nameof(item)));

    /// <summary>The last entry with this key, or null.</summary>
    public Entry? Get(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (string.Equals(_entries[i].Key, key, StringComparison.OrdinalIgnoreCase))
            {
                return _entries[i];
            }
        }

        return null;
    }

    /// <summary>Every entry with this key, in order.</summary>
    public IEnumerable<Entry> GetAll(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var entry in _entries)
        {
            if (string.Equals(entry.Key, key, StringComparison.OrdinalIgnoreCase))
            {
                yield return entry;
            }
        }
    }

    /// <summary>The string value of the last ASCII entry with this key, or null.</summary>
    public string? GetValue(string key)
    {
        var entry = Get(key);
        if (entry is null)
        {
            return null;
        }

        return entry.IsBinary
            ? throw new InvalidOperationException($"Metadata key '{key}' is binary; read it with GetValueBytes.")
            : entry.Value;
    }

    /// <summary>The bytes of the last binary entry with this key, or null.</summary>
    public byte[]? GetValueBytes(string key)
    {
        var entry = Get(key);
        if (entry is null)
        {
            return null;
        }

        return entry.IsBinary
            ? entry.ValueBytes
            : throw new InvalidOperationException($"Metadata key '{key}' is not binary; read it with GetValue.");
    }

    public int IndexOf(Entry item) => _entries.IndexOf(item);

    public void Insert(int index, Entry item) => _entries.Insert(index, item ?? throw new ArgumentNullException(nameof(item)));

    public void RemoveAt(int index) => _entries.RemoveAt(index);

    public void Clear() => _entries.Clear();

    public bool Contains(Entry item) => _entries.Contains(item);

    public void CopyTo(Entry[] array, int arrayIndex) => _entries.CopyTo(array, arrayIndex);

    public bool Remove(Entry item) => _entries.Remove(item);

    public List<Entry>.Enumerator GetEnumerator() => _entries.GetEnumerator();

    IEnumerator<Entry> IEnumerable<Entry>.GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _entries.GetEnumerator();

    /// <summary>One metadata entry.</summary>
    public sealed class Entry
    {
        private readonly string? _value;
        private readonly byte[]? _bytes;

        /// <summary>An ASCII entry; the value must be printable ASCII (0x20-0x7E).</summary>
        public Entry(string key, string value)
        {
            Key = NormalizeKey(key);
            ArgumentNullException.ThrowIfNull(value);
            if (Key.EndsWith(BinaryHeaderSuffix, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Metadata key '{Key}' ends in '-bin', so its value must be bytes: use Add(string, byte[]).", nameof(key));
            }

            foreach (var c in value)
            {
                if (c < 0x20 || c > 0x7E)
                {
                    throw new ArgumentException($"Metadata value of '{Key}' contains a character outside printable ASCII (0x20-0x7E); use a '-bin' key for binary data.", nameof(value));
                }
            }

            _value = value;
        }

        /// <summary>A binary entry; the key must end in "-bin".</summary>
        public Entry(string key, byte[] valueBytes)
        {
            Key = NormalizeKey(key);
            ArgumentNullException.ThrowIfNull(valueBytes);
            if (!Key.EndsWith(BinaryHeaderSuffix, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Metadata key '{Key}' carries bytes, so it must end in '-bin' (e.g. '{Key}-bin').", nameof(key));
            }

            _bytes = valueBytes;
        }

        /// <summary>The lower-cased key.</summary>
        public string Key { get; }

        /// <summary>The string value; throws for binary entries.</summary>
        public string Value => _value ?? throw new InvalidOperationException($"Metadata entry '{Key}' is binary; read ValueBytes.");

        /// <summary>The bytes (ASCII bytes of the value for string entries).</summary>
        public byte[] ValueBytes => _bytes ?? Encoding.ASCII.GetBytes(_value!);

        /// <summary>True when the key ends in "-bin".</summary>
        public bool IsBinary => _bytes is not null;

        /// <inheritdoc />
        public override string ToString() => IsBinary
            ? $"[Entry: key={Key}, valueBytes={_bytes!.Length}]"
            : $"[Entry: key={Key}, value={_value}]";

        private static string NormalizeKey(string key)
        {
            ArgumentException.ThrowIfNullOrEmpty(key);
            var lower = key.ToLowerInvariant();
            foreach (var c in lower)
            {
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
                {
                    throw new ArgumentException($"Metadata key '{key}' contains '{c}'; keys may only contain a-z, 0-9, '-', '_' and '.'.", nameof(key));
                }
            }

            return lower;
        }
    }
}
