using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// One server call on Kestrel: the context handlers see, plus the request/response I/O. Reads and
/// writes go through gates so that once the call has ended (status sent, deadline, client gone) no
/// handler code touches the pooled HttpContext again, even if the handler is still running.
/// </summary>
internal sealed class HttpServerCallContext : ServerCallContext, IDisposable
{
    private const int Running = 0;
    private const int Finishing = 1;
    private const int EndedEarly = 2;

    private readonly HttpContext _http;
    private readonly ServerRuntime _runtime;
    private readonly CancellationTokenSource _cts;
    private readonly TaskCompletionSource _endedEarly = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _readGate = new(1, 1);
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly string _host;
    private readonly IPAddress? _remoteIp;
    private readonly int _remotePort;
    private CancellationTokenRegistration _abortRegistration;
    private CancellationTokenSource? _deadlineCts;
    private CancellationTokenRegistration _deadlineRegistration;
    private int _state;
    private bool _deadlineExceeded;
    private volatile bool _readClosed;
    private volatile bool _writeClosed;
    private bool _headersPrepared;
    private bool _headersSent;
    private bool _messagesWritten;
    private bool _compressResponses;
    private Metadata? _responseTrailers;
    private Dictionary<object, object>? _userState;
    private string? _peer;

    public HttpServerCallContext(HttpContext http, string method, ServerRuntime runtime)
    {
        _http = http;
        _runtime = runtime;
        Method = method;
        _host = http.Request.Host.Value ?? string.Empty;
        _remoteIp = http.Connection.RemoteIpAddress;
        _remotePort = http.Connection.RemotePort;
        _cts = new CancellationTokenSource();
        RequestHeaders = ReadRequestHeaders(http.Request.Headers);
    }

    public override string Method { get; }

    public override string Host => _host;

    public override string Peer => _peer ??= FormatPeer(_remoteIp, _remotePort);

    public override DateTime Deadline => DeadlineUtc;

    public DateTime DeadlineUtc { get; private set; } = DateTime.MaxValue;

    public override Metadata RequestHeaders { get; }

    public override CancellationToken CancellationToken => _cts.Token;

    public override Metadata ResponseTrailers => _responseTrailers ??= new Metadata();

    public override Status Status { get; set; } = Status.DefaultSuccess;

    public override WriteOptions? WriteOptions { get; set; }

    public override string? ResponseCompression { get; set; }

    public override IDictionary<object, object> UserState => _userState ??= new Dictionary<object, object>();

    /// <summary>Completes when the call ended before the handler did (deadline or client gone).</summary>
    public Task EndedEarlyTask => _endedEarly.Task;

    /// <summary>The request's grpc-encoding, null when absent.</summary>
    public string? RequestEncoding { get; private set; }

    /// <summary>The underlying HTTP context (valid only while the call runs).</summary>
    public HttpContext HttpContext => _http;

    /// <summary>
    /// Reads the protocol headers (grpc-encoding, grpc-timeout), lifts Kestrel's body limits that do not
    /// fit long streams, and starts the deadline. Returns an error status when the call must not run.
    /// </summary>
    public Status? Initialize()
    {
        var headers = _http.Request.Headers;
        var encoding = headers[GrpcProtocol.EncodingHeader].ToString();
        if (encoding.Length > 0)
        {
            if (!GrpcProtocol.IsSupportedEncoding(encoding))
            {
                ServerLog.UnsupportedRequestEncoding(_runtime.Logger, Method, encoding);
                return new Status(
                    StatusCode.Unimplemented,
                    $"Request grpc-encoding '{encoding}' is not supported; supported encodings: {GrpcProtocol.SupportedEncodings}.");
            }

            RequestEncoding = encoding;
        }

        var bodySize = _http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (bodySize is { IsReadOnly: false })
        {
            // Streams may carry any number of messages; the per-message limit is enforced by framing.
            bodySize.MaxRequestBodySize = null;
        }

        var minRate = _http.Features.Get<IHttpMinRequestBodyDataRateFeature>();
        if (minRate is not null)
        {
            // A quiet stream is normal for gRPC (e.g. an idle subscription), not a slow-loris attack.
            minRate.MinDataRate = null;
        }

        _abortRegistration = _http.RequestAborted.UnsafeRegister(static s => ((HttpServerCallContext)s!).OnAborted(), this);

        var timeoutHeader = headers[GrpcProtocol.TimeoutHeader].ToString();
        if (timeoutHeader.Length > 0)
        {
            if (!GrpcTimeout.TryParse(timeoutHeader, out var timeout))
            {
                ServerLog.InvalidTimeout(_runtime.Logger, Method, timeoutHeader);
            }
            else
            {
                StartDeadline(timeout);
            }
        }

        return null;
    }

    /// <summary>Claims the right to finish the call normally; false when it already ended early.</summary>
    public bool TryBeginFinish() => Interlocked.CompareExchange(ref _state, Finishing, Running) == Running;

    public override async Task WriteResponseHeadersAsync(Metadata responseHeaders)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        EnterWrite();
        try
        {
            if (_headersSent)
            {
                throw new InvalidOperationException("Response headers were already sent; WriteResponseHeadersAsync may be called once, before the first message.");
            }

            PrepareResponseHeaders(responseHeaders);
            _headersSent = true;
            await _http.Response.StartAsync(_cts.Token).ConfigureAwait(false);
            var result = await _http.Response.BodyWriter.FlushAsync(_cts.Token).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(_cts.Token);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Writes one response message; flush false leaves it buffered until the status is written.</summary>
    public async ValueTask WriteMessageAsync(IMessage message, bool flush, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        cancellationToken.ThrowIfCancellationRequested();
        EnterWrite();
        try
        {
            if (!_headersPrepared)
            {
                PrepareResponseHeaders(null);
            }

            var compress = _compressResponses && !(WriteOptions?.NoCompress ?? false);
            var options = _runtime.Options;
            MessageFraming.WriteMessage(_http.Response.BodyWriter, message, compress, options.CompressionLevel, options.MaxSendMessageSize);
            _messagesWritten = true;
            if (flush)
            {
                var result = await _http.Response.BodyWriter.FlushAsync(_cts.Token).ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    throw new OperationCanceledException(_cts.Token);
                }
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Reads the next request message; null at the end of the request stream.</summary>
    public async ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_readClosed)
        {
            throw CallEndedException();
        }

        if (!_readGate.Wait(0))
        {
            throw new InvalidOperationException("A previous read of the request stream is still in progress; await each MoveNext before the next.");
        }

        CancellationTokenSource? linked = null;
        try
        {
            if (_readClosed)
            {
                throw CallEndedException();
            }

            var token = _cts.Token;
            if (cancellationToken.CanBeCanceled && cancellationToken != token)
            {
                linked = CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken);
                token = linked.Token;
            }

            return await MessageFraming.ReadMessageAsync(_http.Request.BodyReader, parser, _runtime.Options.MaxReceiveMessageSize, RequestEncoding, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException && ex is not OperationCanceledException && _cts.IsCancellationRequested)
        {
            // Kestrel reports a reset stream as an IOException; to the handler it is a cancellation.
            throw new OperationCanceledException("The call was cancelled.", ex, _cts.Token);
        }
        finally
        {
            linked?.Dispose();
            _readGate.Release();
        }
    }

    /// <summary>
    /// Reads exactly one request message (unary and server-streaming): a missing message or a second
    /// one is INTERNAL, per the spec.
    /// </summary>
    public async ValueTask<T> ReadSingleMessageAsync<T>(MessageParser<T> parser)
        where T : class, IMessage<T>
    {
        var message = await ReadMessageAsync(parser, CancellationToken.None).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Internal, "The request ended without a message; this method takes exactly one request message."));
        var extra = await ReadMessageAsync(parser, CancellationToken.None).ConfigureAwait(false);
        if (extra is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "The request has more than one message; this method takes exactly one request message."));
        }

        return message;
    }

    /// <summary>Ends a call whose handler returned or threw: writes status and trailers.</summary>
    public async Task FinishAsync(Exception? exception)
    {
        Status status;
        Metadata? trailers = _responseTrailers;
        if (exception is null)
        {
            status = Status;
        }
        else if (exception is RpcException rpc)
        {
            status = rpc.Status;
            // Handlers often throw with context.ResponseTrailers itself; merge only a distinct collection.
            if (rpc.Trailers.Count > 0 && !ReferenceEquals(rpc.Trailers, _responseTrailers))
            {
                trailers = ResponseTrailers;
                foreach (var entry in rpc.Trailers)
                {
                    trailers.Add(entry);
                }
            }
        }
        else if (exception is OperationCanceledException && _cts.IsCancellationRequested)
        {
            status = new Status(StatusCode.Cancelled, "The call was cancelled.");
        }
        else
        {
            ServerLog.HandlerFailed(_runtime.Logger, Method, exception);
            status = new Status(
                StatusCode.Unknown,
                _runtime.Options.EnableDetailedErrors
                    ? $"Exception was thrown by handler. {exception.GetType().Name}: {exception.Message}"
                    : "Exception was thrown by handler.");
        }

        if (status.StatusCode != StatusCode.OK)
        {
            ServerLog.RpcError(_runtime.Logger, Method, status.StatusCode, status.Detail);
        }

        // Nothing else may write: the handler is done, and a leaked write sees the closed gate.
        _writeClosed = true;
        await _writeGate.WaitAsync().ConfigureAwait(false);
        WriteStatus(status, trailers);
        await CloseReadsAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Ends a call that stopped before its handler did: on a deadline, sends DEADLINE_EXCEEDED; on a client
    /// cancel, sends nothing. Waits only for in-flight I/O (cancelled), not for the handler.
    /// </summary>
    public async Task EndEarlyAsync()
    {
        _writeClosed = true;
        await _writeGate.WaitAsync().ConfigureAwait(false);
        if (_deadlineExceeded && !_http.RequestAborted.IsCancellationRequested)
        {
            ServerLog.DeadlineExceeded(_runtime.Logger, Method);
            WriteStatus(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), _responseTrailers);
        }
        else
        {
            ServerLog.CallAborted(_runtime.Logger, Method);
        }

        await CloseReadsAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        _abortRegistration.Dispose();
        _deadlineRegistration.Dispose();
        _deadlineCts?.Dispose();
    }

    private static Metadata ReadRequestHeaders(IHeaderDictionary headers)
    {
        var metadata = new Metadata();
        foreach (var header in headers)
        {
            if (MetadataHeaders.IsReserved(header.Key))
            {
                continue;
            }

            foreach (var value in header.Value)
            {
                if (value is null)
                {
                    continue;
                }

                try
                {
                    MetadataHeaders.AddHeader(metadata, header.Key, value);
                }
                catch (Exception ex) when (ex is FormatException or ArgumentException)
                {
                    // A malformed custom header is the client's problem; drop it rather than fail every call.
                }
            }
        }

        return metadata;
    }

    private static string FormatPeer(IPAddress? ip, int port)
    {
        if (ip is null)
        {
            return "unknown";
        }

        return ip.AddressFamily == AddressFamily.InterNetworkV6
            ? $"ipv6:[{ip}]:{port}"
            : $"ipv4:{ip}:{port}";
    }

    private void StartDeadline(TimeSpan timeout)
    {
        var time = _runtime.Options.TimeProvider;
        var now = time.GetUtcNow().UtcDateTime;
        DeadlineUtc = timeout < DateTime.MaxValue - now ? now + timeout : DateTime.MaxValue;
        if (timeout <= TimeSpan.Zero)
        {
            OnDeadline();
            return;
        }

        // CancellationTokenSource timers are limited to ~49 days; longer deadlines never fire in practice.
        if (timeout.TotalMilliseconds >= uint.MaxValue - 1)
        {
            return;
        }

        _deadlineCts = new CancellationTokenSource(timeout, time);
        _deadlineRegistration = _deadlineCts.Token.UnsafeRegister(static s => ((HttpServerCallContext)s!).OnDeadline(), this);
    }

    private void OnDeadline()
    {
        if (Interlocked.CompareExchange(ref _state, EndedEarly, Running) != Running)
        {
            return;
        }

        _deadlineExceeded = true;
        CancelHandler();
        _endedEarly.TrySetResult();
    }

    private void OnAborted()
    {
        if (Interlocked.CompareExchange(ref _state, EndedEarly, Running) == Running)
        {
            CancelHandler();
            _endedEarly.TrySetResult();
        }
        else
        {
            CancelHandler();
        }
    }

    private void CancelHandler()
    {
        try
        {
            _cts.Cancel();
        }
        catch (AggregateException ex)
        {
            // A handler's cancellation callback threw; the call still ends.
            ServerLog.HandlerEndedAfterCall(_runtime.Logger, Method, ex);
        }
    }

    private void EnterWrite()
    {
        if (_writeClosed)
        {
            throw CallEndedException();
        }

        if (!_writeGate.Wait(0))
        {
            throw new InvalidOperationException("A previous write is still in progress; await each WriteAsync before the next.");
        }

        if (_writeClosed)
        {
            _writeGate.Release();
            throw CallEndedException();
        }
    }

    private Exception CallEndedException() => _cts.IsCancellationRequested
        ? new OperationCanceledException("The call has ended (deadline exceeded or cancelled by the client).", _cts.Token)
        : new InvalidOperationException("The call has already ended; handlers must not read or write after returning.");

    private void PrepareResponseHeaders(Metadata? custom)
    {
        _headersPrepared = true;
        var response = _http.Response;
        response.ContentType = GrpcProtocol.ContentType;
        var headers = response.Headers;
        headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
        var compression = ResponseCompression ?? _runtime.Options.ResponseCompression;
        if (compression is not null && !string.Equals(compression, GrpcProtocol.Identity, StringComparison.OrdinalIgnoreCase))
        {
            if (string.Equals(compression, GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase)
                && GrpcProtocol.AcceptsEncoding(_http.Request.Headers[GrpcProtocol.AcceptEncodingHeader].ToString(), GrpcProtocol.Gzip))
            {
                _compressResponses = true;
                headers[GrpcProtocol.EncodingHeader] = GrpcProtocol.Gzip;
            }
            else
            {
                ServerLog.CompressionNotAccepted(_runtime.Logger, Method, compression);
            }
        }

        if (custom is not null)
        {
            foreach (var entry in custom)
            {
                if (!MetadataHeaders.IsReserved(entry.Key))
                {
                    headers.Append(entry.Key, MetadataHeaders.EncodeValue(entry));
                }
            }
        }
    }

    private void WriteStatus(Status status, Metadata? trailers)
    {
        if (_http.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        if (!_headersSent && !_messagesWritten && !_http.Response.HasStarted)
        {
            ServerProtocol.WriteTrailersOnly(_http, status, trailers);
        }
        else
        {
            ServerProtocol.WriteTrailers(_http, status, trailers);
        }
    }

    private async Task CloseReadsAsync()
    {
        _readClosed = true;
        if (_readGate.CurrentCount == 0)
        {
            // A read is still in flight (a handler that returned without draining): cancel and wait it out.
            CancelHandler();
        }

        await _readGate.WaitAsync().ConfigureAwait(false);
    }
}
