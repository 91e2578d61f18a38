using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;

namespace ControlPlane.Client;

/// <summary>
/// Reads the rich error details a scheduler attaches to a failed call (<c>grpc-status-details-bin</c>):
/// a google.rpc.BadRequest on INVALID_ARGUMENT, a google.rpc.ErrorInfo on the other codes. No message text is parsed.
/// </summary>
public static class RpcExceptionDetails
{
    /// <summary>ErrorInfo.domain of errors raised by a ControlPlane scheduler.</summary>
    public const string Domain = "controlplane.v1";

    /// <summary>Every field violation of an INVALID_ARGUMENT; empty when the status carries no google.rpc.BadRequest.</summary>
    public static IReadOnlyList<FieldViolation> GetFieldViolations(this RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var badRequest = exception.GetRpcStatus()?.GetDetail<BadRequest>();
        return badRequest is null
            ? []
            : badRequest.FieldViolations.Select(v => new FieldViolation(v.Field, v.Description)).ToArray();
    }

    /// <summary>The google.rpc.ErrorInfo of the status, when the scheduler sent one.</summary>
    public static ErrorInfo? GetErrorInfo(this RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.GetRpcStatus()?.GetDetail<ErrorInfo>();
    }

    /// <summary>Why the call failed, from the ErrorInfo reason; <see cref="ErrorReason.Unspecified"/> when none was sent or it is newer than this client.</summary>
    public static ErrorReason GetErrorReason(this RpcException exception)
    {
        var info = exception.GetErrorInfo();
        if (info is null || info.Domain != Domain)
        {
            return ErrorReason.Unspecified;
        }

        var value = ErrorsReflection.Descriptor.EnumTypes[0].FindValueByName(info.Reason);
        return value is null ? ErrorReason.Unspecified : (ErrorReason)value.Number;
    }
}
