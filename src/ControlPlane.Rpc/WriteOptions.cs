namespace ControlPlane.Rpc;

/// <summary>Per-message write options.</summary>
/// <param name="NoCompress">True sends the message uncompressed even when the call compresses.</param>
public sealed record WriteOptions(bool NoCompress = false);
