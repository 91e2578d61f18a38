using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Status = Google.Rpc.Status;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// Turns bad requests and store refusals into gRPC statuses with rich details in <c>grpc-status-details-bin</c>:
/// INVALID_ARGUMENT carries a google.rpc.BadRequest with every field violation, the other codes a
/// google.rpc.ErrorInfo whose reason is a controlplane.v1.ErrorReason name. The message stays readable for people.
/// </summary>
internal static class RpcErrors
{
    /// <summary>ErrorInfo.domain of every error this scheduler raises.</summary>
    public const string Domain = "controlplane.v1";

    /// <summary>
    /// Most field violations one status carries. Details travel in a trailer, and HTTP clients refuse large header
    /// blocks (64 KiB in .NET, 8 KiB by default in grpcio and grpc-java): past this, the client would get a broken
    /// connection instead of INVALID_ARGUMENT.
    /// </summary>
    public const int MaxViolations = 50;

    /// <summary>Longest status message, in characters, for the same reason.</summary>
    public const int MaxMessageLength = 2048;

    /// <summary>INVALID_ARGUMENT for one field; <paramref name="message"/> names the field and says how to fix it.</summary>
    public static RpcException InvalidArgument(string field, string message) =>
        BadRequest(message, [new BadRequest.Types.FieldViolation { Field = field, Description = message }]);

    /// <summary>INVALID_ARGUMENT listing every broken label rule under <paramref name="field"/> (a Hello's, a filter's).</summary>
    public static void ThrowIfInvalidLabels(IReadOnlyDictionary<string, string> labels, string field)
    {
        var violations = Internal.RunSpecValidator.LabelViolations(labels, field);
        if (violations.Count > 0)
        {
            throw BadRequest(
                string.Join("; ", violations),
                violations.Select(v => new BadRequest.Types.FieldViolation { Field = v.Field, Description = v.Description }));
        }
    }

    public static RpcException Required(string field) =>
        InvalidArgument(field, $"{field} is required");

    /// <summary>INVALID_ARGUMENT listing every violation; <paramref name="message"/> is the human-readable summary.</summary>
    public static RpcException BadRequest(string message, IEnumerable<BadRequest.Types.FieldViolation> violations)
    {
        var details = new BadRequest();
        var all = violations.ToList();
        details.FieldViolations.AddRange(all.Take(MaxViolations));
        if (all.Count > MaxViolations)
        {
            details.FieldViolations.Add(new BadRequest.Types.FieldViolation
            {
                Field = "",
                Description = $"{all.Count - MaxViolations} more violations are not listed; fix these {MaxViolations} and submit again to see the rest",
            });
        }

        return new Status
        {
            Code = (int)Code.InvalidArgument,
            Message = Truncate(message),
            Details = { Any.Pack(details) },
        }.ToRpcException();
    }

    private static string Truncate(string message)
    {
        const string Cut = " ... (truncated; see the field violations)";
        return message.Length <= MaxMessageLength ? message : string.Concat(message.AsSpan(0, MaxMessageLength - Cut.Length), Cut);
    }

    /// <summary>A status whose ErrorInfo names <paramref name="reason"/>; <paramref name="metadata"/> pairs with an empty value are left out.</summary>
    public static RpcException WithReason(StatusCode code, ErrorReason reason, string message, params (string Key, string? Value)[] metadata)
    {
        var info = new ErrorInfo { Domain = Domain, Reason = ReasonName(reason) };
        foreach (var (key, value) in metadata)
        {
            if (!string.IsNullOrEmpty(value))
            {
                info.Metadata[key] = value;
            }
        }

        return new Status
        {
            Code = (int)code,
            Message = message,
            Details = { Any.Pack(info) },
        }.ToRpcException();
    }

    /// <summary>UNAVAILABLE because this replica is shutting down: the caller retries, on another replica if there is one.</summary>
    public static RpcException ShuttingDown(string message, params (string Key, string? Value)[] metadata) =>
        WithReason(StatusCode.Unavailable, ErrorReason.SchedulerShuttingDown, message, metadata);

    public static RpcException RunNotFound(string runId) =>
        WithReason(StatusCode.NotFound, ErrorReason.RunNotFound, $"run {runId} not found; check the run id (ListRuns shows existing runs)", ("run_id", runId));

    /// <summary>The ErrorInfo.reason text of a reason: its proto enum value name, e.g. "ERROR_REASON_RUN_NOT_FOUND".</summary>
    public static string ReasonName(ErrorReason reason) => ErrorsReflection.Descriptor.EnumTypes[0].FindValueByNumber((int)reason).Name;

    /// <summary>
    /// Maps what a store call threw; null for exceptions that are not the caller's to fix. <paramref name="about"/>
    /// names what the call was about (run_id, step_id, agent_id) for the ErrorInfo metadata.
    /// </summary>
    public static RpcException? Map(Exception exception, params (string Key, string? Value)[] about) => exception switch
    {
        RpcException rpc => rpc,
        RunSpecValidationException invalid => BadRequest(
            invalid.Message,
            invalid.Violations.Select(v => new BadRequest.Types.FieldViolation { Field = v.Field, Description = v.Description })),
        RunStoreException { Error: RunStoreError.InvalidArgument } store => BadRequest(
            store.Message,
            [new BadRequest.Types.FieldViolation { Field = store.Field ?? "", Description = store.Message }]),
        RunStoreException store => WithReason(
            store.Error switch
            {
                RunStoreError.NotFound => StatusCode.NotFound,
                RunStoreError.FailedPrecondition => StatusCode.FailedPrecondition,
                _ => StatusCode.Unavailable,
            },
            store.Reason,
            store.Message,
            about),
        _ => null,
    };

    /// <summary>Awaits a store call, rethrowing caller-fixable failures as their gRPC status.</summary>
    public static async Task<T> Guard<T>(Func<Task<T>> call, params (string Key, string? Value)[] about)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception ex) when (Map(ex, about) is { } rpc && !ReferenceEquals(rpc, ex))
        {
            throw rpc;
        }
    }
}
