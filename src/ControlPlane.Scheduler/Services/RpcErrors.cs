using ControlPlane.Rpc;

namespace ControlPlane.Scheduler.Services;

/// <summary>Turns store failures and bad requests into gRPC statuses whose message says what to fix.</summary>
internal static class RpcErrors
{
    /// <summary>Trailer carrying the spec violations one per line ("field: description"), for clients that want them apart.</summary>
    public const string ViolationsTrailer = "cp-violations-bin";

    public static RpcException InvalidArgument(string message) => new(new Status(StatusCode.InvalidArgument, message));

    public static RpcException Required(string field) => InvalidArgument($"{field} is required");

    public static RpcException Unavailable(string message) => new(new Status(StatusCode.Unavailable, message));

    public static RpcException RunNotFound(string runId) =>
        new(new Status(StatusCode.NotFound, $"run {runId} not found; check the run id (ListRuns shows existing runs)"));

    /// <summary>Maps what a store call threw; returns null for exceptions that are not the caller's to fix.</summary>
    public static RpcException? Map(Exception exception) => exception switch
    {
        RpcException rpc => rpc,
        RunSpecValidationException invalid => Violations(invalid),
        RunStoreException store => new RpcException(new Status(
            store.Error switch
            {
                RunStoreError.NotFound => StatusCode.NotFound,
                RunStoreError.FailedPrecondition => StatusCode.FailedPrecondition,
                _ => StatusCode.InvalidArgument,
            },
            store.Message)),
        _ => null,
    };

    private static RpcException Violations(RunSpecValidationException invalid)
    {
        var trailers = new Metadata();
        trailers.Add(ViolationsTrailer, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', invalid.Violations)));
        var detail = "invalid run spec: " + string.Join("; ", invalid.Violations);
        return new RpcException(new Status(StatusCode.InvalidArgument, detail), trailers);
    }

    /// <summary>Awaits a store call, rethrowing caller-fixable failures as their gRPC status.</summary>
    public static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception ex) when (Map(ex) is { } rpc && !ReferenceEquals(rpc, ex))
        {
            throw rpc;
        }
    }
}
