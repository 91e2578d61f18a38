using System.Text;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Reads lines from a step's stdout or stderr holding at most a fixed number of bytes each: a longer line is
/// returned cut (with a note saying so) as soon as the limit is reached, and the rest of it is dropped, so a
/// line that never ends costs neither memory nor a wait. Lines end at "\n", "\r" or "\r\n", as with
/// <see cref="StreamReader.ReadLine"/>; bytes are decoded as UTF-8.
/// </summary>
internal sealed class LineReader(Stream stream, int maxLineBytes)
{
    private readonly string _cutNote = $" [line cut at {maxLineBytes} bytes; the rest was dropped]";
    private readonly byte[] _buffer = new byte[8192];
    private readonly byte[] _line = new byte[maxLineBytes];
    private int _start;
    private int _end;
    private int _length;
    private bool _skipNewline;
    private bool _dropping;

    /// <summary>The next line, or null at the end of the stream.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            while (_start < _end)
            {
                if (_skipNewline)
                {
                    // "\r\n" is one line end, also when the two arrive in different reads.
                    _skipNewline = false;
                    if (_buffer[_start] == (byte)'\n')
                    {
                        _start++;
                        continue;
                    }
                }

                var pending = _buffer.AsSpan(_start, _end - _start);
                var end = pending.IndexOfAny((byte)'\n', (byte)'\r');
                var content = end < 0 ? pending : pending[..end];
                if (!_dropping)
                {
                    var room = _line.Length - _length;
                    if (content.Length > room)
                    {
                        // Over the limit: return what fits now, drop the rest of this line.
                        content[..room].CopyTo(_line.AsSpan(_length));
                        _length += room;
                        _start += room;
                        _dropping = true;
                        return TakeLine(cut: true);
                    }

                    content.CopyTo(_line.AsSpan(_length));
                    _length += content.Length;
                }

                _start += content.Length;
                if (end < 0)
                {
                    break;
                }

                _skipNewline = _buffer[_start] == (byte)'\r';
                _start++;
                if (_dropping)
                {
                    _dropping = false;
                    continue;
                }

                return TakeLine(cut: false);
            }

            _start = 0;
            _end = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (_end == 0)
            {
                // A last line without a line end still counts, unless it was already returned cut.
                if (_length > 0 && !_dropping)
                {
                    return TakeLine(cut: false);
                }

                return null;
            }
        }
    }

    private string TakeLine(bool cut)
    {
        var length = _length;
        if (cut)
        {
            // Cut at a character boundary: back off over UTF-8 continuation bytes (10xxxxxx) to the start of the last character.
            var start = length;
            while (start > 0 && length - start < 4 && (_line[start - 1] & 0xC0) == 0x80)
            {
                start--;
            }

            if (start > 0 && _line[start - 1] >= 0xC0 && length - (start - 1) < SequenceLength(_line[start - 1]))
            {
                length = start - 1;
            }
        }

        _length = 0;
        var text = Encoding.UTF8.GetString(_line, 0, length);
        return cut ? text + _cutNote : text;
    }

    private static int SequenceLength(byte lead) => lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
}
