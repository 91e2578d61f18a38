namespace ControlPlane.Client;

/// <summary>One problem found in a pipeline file, at a line and column, about a field path such as <c>steps[2].timeout</c>.</summary>
/// <param name="Path">The file's path as given to the parser; null when the text did not come from a file.</param>
/// <param name="Location">Where in the file.</param>
/// <param name="Field">The field path in RunSpec terms; empty for problems with the document as a whole.</param>
/// <param name="Message">What is wrong and how to fix it.</param>
public sealed record PipelineError(string? Path, PipelineLocation Location, string Field, string Message)
{
    /// <summary><c>hello.yaml:12:5: steps[2].timeout: '10 minutes' is not a duration; use e.g. 10m, 30s, 1h</c>.</summary>
    public override string ToString()
    {
        var where = $"{Path ?? "<pipeline>"}:{Location.Line}:{Location.Column}";
        return Field.Length == 0 ? $"{where}: {Message}" : $"{where}: {Field}: {Message}";
    }
}
