namespace ControlPlane.Client;

/// <summary>A pipeline file could not be read into a RunSpec; every problem found is listed.</summary>
public sealed class PipelineFileException : Exception
{
    public PipelineFileException(IReadOnlyList<PipelineError> errors)
        : base(string.Join(Environment.NewLine, errors ?? throw new ArgumentNullException(nameof(errors))))
    {
        Errors = errors;
    }

    public PipelineFileException()
        : this([])
    {
    }

    public PipelineFileException(string message)
        : base(message)
    {
        Errors = [];
    }

    public PipelineFileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    /// <summary>The problems, in file order.</summary>
    public IReadOnlyList<PipelineError> Errors { get; }
}
