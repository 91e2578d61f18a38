namespace ControlPlane.Client;

/// <summary>A place in a pipeline file: 1-based line and column.</summary>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
public readonly record struct PipelineLocation(int Line, int Column);
