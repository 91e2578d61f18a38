namespace ControlPlane.Rpc;

/// <summary>Per-message write options.</summary>
/// <param name="NoCompress">True sends the message uncompressed even when the call compresses.</param>
/// <param name="BufferHint">
/// True leaves the message in the transport's buffer instead of flushing it: it goes out with the next write
/// made without the hint, or when the call ends (on a client, another call's flush on the same connection may carry
/// it out earlier). A writer with a burst of messages sets it on all but the last, so the burst costs one flush.
/// </param>
public sealed record WriteOptions(bool NoCompress = false, bool BufferHint = false);
