using ControlPlane.Client.Internal;
using ControlPlane.V1;

namespace ControlPlane.Client;

/// <summary>
/// A pipeline file (YAML mirroring RunSpec) read into a <see cref="RunSpec"/>, remembering where each
/// field was written so the scheduler's validation errors can point back at lines of the file.
/// </summary>
public sealed class PipelineFile
{
    private readonly IReadOnlyDictionary<string, PipelineLocation> _locations;

    private PipelineFile(string? path, RunSpec spec, IReadOnlyDictionary<string, PipelineLocation> locations)
    {
        Path = path;
        Spec = spec;
        _locations = locations;
    }

    /// <summary>The path given to <see cref="Parse"/>; null when the text did not come from a file.</summary>
    public string? Path { get; }

    /// <summary>The run spec the file describes.</summary>
    public RunSpec Spec { get; }

    /// <summary>
    /// Reads a pipeline. Throws <see cref="PipelineFileException"/> listing every problem
    /// (<c>hello.yaml:12:5: steps[2].timeout: ...</c>): YAML syntax, unknown keys, wrong types, bad durations; and files
    /// over 4 MiB, nested deeper than 32 levels or expanding through aliases to more than a million values.
    /// </summary>
    /// <param name="yaml">The file's text.</param>
    /// <param name="path">The file's path, used in messages; null for text from elsewhere.</param>
    public static PipelineFile Parse(string yaml, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var reader = new PipelineReader(path);
        var spec = reader.Read(yaml);
        if (reader.Errors.Count > 0)
        {
            throw new PipelineFileException(reader.Errors);
        }

        return new PipelineFile(path, spec, reader.Locations);
    }

    /// <summary>Reads a pipeline file from disk; see <see cref="Parse"/>.</summary>
    public static async Task<PipelineFile> LoadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);

        // Bytes bound characters from above, so a file over the limit in bytes is refused without reading it.
        var length = new FileInfo(path).Length;
        if (length > PipelineReader.MaxFileChars)
        {
            throw new PipelineFileException([PipelineReader.TooLarge(path, length, "bytes")]);
        }

        var text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return Parse(text, path);
    }

    /// <summary>
    /// Where a RunSpec field path (as the scheduler reports it, e.g. <c>steps[3].needs[0]</c> or
    /// <c>steps[1].command</c>) was written. A path that was not written itself resolves to its
    /// nearest written parent (<c>steps[3].framework</c> → the step); null when nothing matches.
    /// </summary>
    public PipelineLocation? Locate(string fieldPath)
    {
        ArgumentNullException.ThrowIfNull(fieldPath);
        var candidate = fieldPath.Trim();
        while (candidate.Length > 0)
        {
            if (_locations.TryGetValue(candidate, out var location))
            {
                return location;
            }

            var cut = Math.Max(candidate.LastIndexOf('.'), candidate.LastIndexOf('['));
            if (cut <= 0)
            {
                break;
            }

            candidate = candidate[..cut];
        }

        return null;
    }

    /// <summary>
    /// One line per violation: <c>file:line: field: message</c>, pointing at the line the field was written on
    /// (or the file's first line when the field was not written, e.g. a required field left out).
    /// </summary>
    public IReadOnlyList<string> Describe(IEnumerable<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        var lines = new List<string>();
        foreach (var violation in violations)
        {
            var line = (violation.Field.Length > 0 ? Locate(violation.Field) : null)?.Line ?? 1;
            var where = $"{Path ?? "<pipeline>"}:{line}";
            lines.Add(violation.Field.Length == 0 ? $"{where}: {violation.Description}" : $"{where}: {violation.Field}: {violation.Description}");
        }

        return lines;
    }
}
