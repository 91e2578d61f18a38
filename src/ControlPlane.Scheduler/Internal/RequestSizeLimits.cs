using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using ControlPlane.Scheduler.Services;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// What one request may carry, per RPC: SubmitRun up to <see cref="SchedulerOptions.MaxSubmitSize"/>, every other call
/// but the agent stream up to <see cref="SmallRequestLimit"/>. It reads the length in the first message's gRPC frame
/// header, before the message is buffered, and refuses an oversized one with RESOURCE_EXHAUSTED naming the limit and
/// how to raise it (grpc's own per-service limit stays behind it, with a message that names neither). The agent stream
/// keeps <see cref="SchedulerOptions.MaxReceiveMessageSize"/>: its reports carry outputs and checkpoints.
/// </summary>
internal sealed class RequestSizeLimits(RequestDelegate next, SchedulerOptions options, ILogger logger)
{
    /// <summary>Largest request of a call other than SubmitRun and the agent stream: ids, filters, a comment. 64 KiB.</summary>
    public const int SmallRequestLimit = 64 * 1024;

    private const string SubmitRunPath = "/controlplane.v1.RunService/SubmitRun";
    private const string AgentServicePrefix = "/controlplane.v1.AgentService/";
    private const int FrameHeaderLength = 5;

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? string.Empty;
        if (path.StartsWith(AgentServicePrefix, StringComparison.Ordinal) || !HttpMethods.IsPost(context.Request.Method))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        if (!IsGrpc(context.Request.ContentType))
        {
            await LimitJsonAsync(context).ConfigureAwait(false);
            return;
        }

        var submit = path.Equals(SubmitRunPath, StringComparison.Ordinal);
        var limit = submit ? options.MaxSubmitSize : SmallRequestLimit;
        var length = await PeekMessageLengthAsync(context).ConfigureAwait(false);
        if (length is null || length <= limit)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var method = path[(path.LastIndexOf('/') + 1)..];
        var message = string.Create(
            CultureInfo.InvariantCulture,
            $"{method} request is {length:N0} bytes; the scheduler accepts at most {limit:N0} bytes for {(submit ? "SubmitRun" : "this call")}");
        message += submit
            ? " (the scheduler's --max-submit-size / CP_MAX_SUBMIT_SIZE raises it; move large params to an artifact store and pass references)"
            : "; send less in one request";
        SchedulerLog.RequestTooLarge(logger, path, length.Value, limit);

        // A trailers-only response: the status travels in the headers, and the unread body is reset, never buffered.
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = "8";
        context.Response.Headers["grpc-message"] = PercentEncode(message);
    }

    private static bool IsGrpc(string? contentType) =>
        contentType is not null && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A JSON call (the transcoded API) gets the same limit as its gRPC method, on the body's bytes: one that says it is
    /// larger is refused at once with 413 and the JSON status; a chunked one that grows past it fails as it is read.
    /// </summary>
    private async Task LimitJsonAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>()?.Method;
        if (method is null)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var submit = method.FullName.Equals(SubmitRunPath, StringComparison.Ordinal);
        var limit = submit ? options.MaxSubmitSize : SmallRequestLimit;
        if (context.Request.ContentLength is { } length && length > limit)
        {
            var message = string.Create(
                CultureInfo.InvariantCulture,
                $"{method.Name} request is {length:N0} bytes; the scheduler accepts at most {limit:N0} bytes for {(submit ? "SubmitRun" : "this call")}");
            message += submit ? " (the scheduler's --max-submit-size / CP_MAX_SUBMIT_SIZE raises it)" : "; send less in one request";
            SchedulerLog.RequestTooLarge(logger, context.Request.Path.Value ?? "", length, limit);
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            await context.Response.WriteAsJsonAsync(new JsonStatus(8, message), context.RequestAborted).ConfigureAwait(false);
            return;
        }

        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } body)
        {
            body.MaxRequestBodySize = limit;
        }

        await next(context).ConfigureAwait(false);
    }

    /// <summary>The JSON form of a status, as the transcoded API writes its errors.</summary>
    private sealed record JsonStatus(
        [property: System.Text.Json.Serialization.JsonPropertyName("code")] int Code,
        [property: System.Text.Json.Serialization.JsonPropertyName("message")] string Message);

    /// <summary>The length the first frame header announces, without consuming anything; null when the body ends before one.</summary>
    private static async Task<long?> PeekMessageLengthAsync(HttpContext context)
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= FrameHeaderLength)
            {
                var header = new byte[FrameHeaderLength];
                buffer.Slice(0, FrameHeaderLength).CopyTo(header);

                // Examined up to the header only: the next read (grpc's) returns at once with whatever else arrived.
                reader.AdvanceTo(buffer.Start, buffer.GetPosition(FrameHeaderLength));
                return BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return null;
            }
        }
    }

    /// <summary>grpc-message encoding: printable ASCII except '%' as is, everything else as %XX of its UTF-8 bytes.</summary>
    private static string PercentEncode(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            if (b is >= 0x20 and <= 0x7e && b != (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }
}
