using OpenTelemetry.Trace;

namespace ControlPlane.Scheduler.Internal;

/// <summary>Stores whose own client library has tracing (the Redis connection) add it to the scheduler's traces.</summary>
internal interface IStoreTracing
{
    void AddTo(TracerProviderBuilder tracing);
}
