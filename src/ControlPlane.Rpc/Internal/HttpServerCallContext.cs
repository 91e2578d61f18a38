using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// One server call on Kestrel: the context handlers see, plus the request/response I/O. Reads and
/// writes go through gates so that once the call has ended (status sent, deadline, client gone) no
/// handler code touches the pooled HttpContext again, even if the handler is still running. The gates
/// are plain interlocked flags: a call allocates nothing for them unless its end must wait for I/O.
/// </summary>
internal sealed class HttpServerCallContext : ServerCallContext, IDisposable
{
    private const int Running = 0;
    private const int HandlerDone = 1;
    private const int EndedEarly = 2;

    private readonly HttpContext _http;
    private readonly ServerRuntime _runtime;
    private readonly CancellationTokenSource _cts;
    private readonly string _host;
    private readonly IPAddress? _remoteIp;
    private readonly int _remotePort;
    private CancellationTokenRegistration _abortRegistration;
    private CancellationTokenSource? _deadlineCts;
    private CancellationTokenRegistration _deadlineRegistration;
    private int _state;
    private int _reading;
    private int _writing;
    private TaskCompletionSource? _ioReleased;
    private TaskCompletionSource? _wake;
    private Metadata? _requestHeaders;
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
    }

    public override string Method { get; }

    public override string Host => _host;

    public override string Peer => _peer ??= FormatPeer(_remoteIp, _remotePort);

    public override DateTime Deadline => DeadlineUtc;

    public DateTime DeadlineUtc { get; private set; } = DateTime.MaxValue;

    // Built on first use: most handlers never look, and the headers are still in the HttpContext until the call ends.
    public override Metadata RequestHeaders => Volatile.Read(ref _requestHeaders) ?? CreateRequestHeaders();

    public override CancellationToken CancellationToken => _cts.Token;

    public override Metadata ResponseTrailers => _responseTrailers ??= new Metadata();

    public override Status Status { get; set; } = Status.DefaultSuccess;

    public override WriteOptions? WriteOptions { get; set; }

    public override string? ResponseCompression { get; set; }

    public override IDictionary<object, object> UserState => _userState ??= new Dictionary<object, object>();

    /// <summary>True once the handler has finished and the call is to end normally (not early).</summary>
    public bool HandlerCompleted => Volatile.Read(ref _state) == HandlerDone;

    /// <summary>What the handler threw; null when it returned. Meaningful once <see cref="HandlerCompleted"/>.</summary>
    public Exception? HandlerError { get; private set; }

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

    /// <summary>
    /// Records that the handler finished. False when the call had already ended early (deadline, client gone):
    /// the status is out, and the caller only accounts for the late handler.
    /// </summary>
    public bool OnHandlerCompleted(Exception? error)
    {
        HandlerError = error;
        if (Interlocked.CompareExchange(ref _state, HandlerDone, Running) != Running)
        {
            return false;
        }

        Volatile.Read(ref _wake)?.TrySetResult();
        return true;
    }

    /// <summary>
    /// Completes when the handler has finished or the call ended early, whichever comes first. A finishing
    /// handler runs the call's end inline (no thread hop); an early end is moved off the timer or Kestrel callback.
    /// </summary>
    public Task WhenHandlerCompletedOrEndedAsync()
    {
        var wake = new TaskCompletionSource();

        // Publish before reading the state: a transition either sees the waiter or is seen here.
        Interlocked.Exchange(ref _wake, wake);
        if (Volatile.Read(ref _state) != Running)
        {
            wake.TrySetResult();
        }

        return wake.Task;
    }

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
            ExitWrite();
        }
    }

    /// <summary>Writes one response message; flush false leaves it buffered until the status is written.</summary>
    public ValueTask WriteMessageAsync(IMessage message, bool flush, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        cancellationToken.ThrowIfCancellationRequested();
        EnterWrite();
        ValueTask<System.IO.Pipelines.FlushResult> flushing;
        try
        {
            if (!_headersPrepared)
            {
                PrepareResponseHeaders(null);
            }

            var compress = _compressResponses && !(WriteOptions?.NoCompress ?? false);
            var options = _runtime.Options;
            var writer = _http.Response.BodyWriter;
            MessageFraming.WriteMessage(writer, message, compress, options.CompressionLevel, options.MaxSendMessageSize);
            _messagesWritten = true;
            if (!flush)
            {
                ExitWrite();
                return ValueTask.CompletedTask;
            }

            flushing = writer.FlushAsync(_cts.Token);
        }
        catch
        {
            ExitWrite();
            throw;
        }

        if (flushing.IsCompletedSuccessfully)
        {
            var canceled = flushing.Result.IsCanceled;
            ExitWrite();
            return canceled ? ValueTask.FromException(new OperationCanceledException(_cts.Token)) : ValueTask.CompletedTask;
        }

        return AwaitFlushAsync(flushing);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitFlushAsync(ValueTask<System.IO.Pipelines.FlushResult> flushing)
    {
        try
        {
            var result = await flushing.ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(_cts.Token);
            }
        }
        finally
        {
            ExitWrite();
        }
    }

    /// <summary>Reads the next request message; null at the end of the request stream.</summary>
    public ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        cancellationToken.ThrowIfCancellationRequested();
        EnterRead();
        var token = _cts.Token;
        if (cancellationToken.CanBeCanceled && cancellationToken != token)
        {
            return ReadLinkedAsync(parser, cancellationToken);
        }

        ValueTask<T?> read;
        try
        {
            read = MessageFraming.ReadMessageAsync(_http.Request.BodyReader, parser, _runtime.Options.MaxReceiveMessageSize, RequestEncoding, token);
        }
        catch (Exception ex)
        {
            ExitRead();
            return ValueTask.FromException<T?>(ex);
        }

        if (read.IsCompletedSuccessfully)
        {
            var message = read.Result;
            ExitRead();
            return ValueTask.FromResult(message);
        }

        return AwaitReadAsync(read);
    }

    /// <summary>
    /// Reads exactly one request message (unary and server-streaming): a missing message or a second
    /// one is INTERNAL, per the spec.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
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
        Metadata? thrownTrailers = null;
        if (exception is null)
        {
            status = Status;
        }
        else if (exception is RpcException rpc)
        {
            status = rpc.Status;
            thrownTrailers = rpc.Trailers;
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
        await TakeGateAsync(write: true).ConfigureAwait(false);
        WriteStatus(status, SnapshotTrailers(_responseTrailers, thrownTrailers));
        await CloseReadsAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Ends a call that stopped before its handler did: on a deadline, sends DEADLINE_EXCEEDED; on a client
    /// cancel, sends nothing. Waits only for in-flight I/O (cancelled), not for the handler.
    /// </summary>
    public async Task EndEarlyAsync()
    {
        // The handler may still read its request headers after the HttpContext has gone back to Kestrel's pool.
        _ = RequestHeaders;
        _writeClosed = true;
        await TakeGateAsync(write: true).ConfigureAwait(false);
        if (_deadlineExceeded && !_http.RequestAborted.IsCancellationRequested)
        {
            ServerLog.DeadlineExceeded(_runtime.Logger, Method);

            // The handler is still running and may still be changing its trailers: send the status alone.
            WriteStatus(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), null);
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

    private Metadata CreateRequestHeaders()
    {
        var metadata = new Metadata();
        foreach (var header in _http.Request.Headers)
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

        return Interlocked.CompareExchange(ref _requestHeaders, metadata, null) ?? metadata;
    }

    /// <summary>
    /// Copies the trailers to send: the context's, then those of a thrown RpcException unless it carries the
    /// context's own collection. The copy keeps the transport off collections handler code can still reach.
    /// </summary>
    private static Metadata.Entry[]? SnapshotTrailers(Metadata? context, Metadata? thrown)
    {
        if (ReferenceEquals(context, thrown))
        {
            thrown = null;
        }

        var contextCount = context?.Count ?? 0;
        var thrownCount = thrown?.Count ?? 0;
        if (contextCount + thrownCount == 0)
        {
            return null;
        }

        var entries = new Metadata.Entry[contextCount + thrownCount];
        context?.CopyTo(entries, 0);
        thrown?.CopyTo(entries, contextCount);
        return entries;
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
        WakeFromCallback();
    }

    private void OnAborted()
    {
        var endedEarly = Interlocked.CompareExchange(ref _state, EndedEarly, Running) == Running;
        CancelHandler();
        if (endedEarly)
        {
            WakeFromCallback();
        }
    }

    private void WakeFromCallback()
    {
        if (Volatile.Read(ref _wake) is { } wake)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static w => w.TrySetResult(), wake, preferLocal: false);
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

        if (Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
        {
            throw _writeClosed
                ? CallEndedException()
                : new InvalidOperationException("A previous write is still in progress; await each WriteAsync before the next.");
        }

        if (_writeClosed)
        {
            ExitWrite();
            throw CallEndedException();
        }
    }

    private void ExitWrite()
    {
        // Full fence before looking for a waiter, so the call's end either sees the gate open or is woken.
        Interlocked.Exchange(ref _writing, 0);
        Volatile.Read(ref _ioReleased)?.TrySetResult();
    }

    private void EnterRead()
    {
        if (_readClosed)
        {
            throw CallEndedException();
        }

        if (Interlocked.CompareExchange(ref _reading, 1, 0) != 0)
        {
            throw _readClosed
                ? CallEndedException()
                : new InvalidOperationException("A previous read of the request stream is still in progress; await each MoveNext before the next.");
        }

        if (_readClosed)
        {
            ExitRead();
            throw CallEndedException();
        }
    }

    private void ExitRead()
    {
        Interlocked.Exchange(ref _reading, 0);
        Volatile.Read(ref _ioReleased)?.TrySetResult();
    }

    /// <summary>Takes a gate for good once its in-flight holder has left; only the call's end (one at a time) calls this.</summary>
    private async ValueTask TakeGateAsync(bool write)
    {
        while (Interlocked.CompareExchange(ref write ? ref _writing : ref _reading, 1, 0) != 0)
        {
            var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _ioReleased, released);
            if (Volatile.Read(ref write ? ref _writing : ref _reading) == 0)
            {
                continue;
            }

            await released.Task.ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<T?> AwaitReadAsync<T>(ValueTask<T?> read)
        where T : class, IMessage<T>
    {
        try
        {
            return await read.ConfigureAwait(false);
        }
        catch (Exception ex) when (IsResetOfCancelledCall(ex))
        {
            throw new OperationCanceledException("The call was cancelled.", ex, _cts.Token);
        }
        finally
        {
            ExitRead();
        }
    }

    private async ValueTask<T?> ReadLinkedAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken);
            return await MessageFraming.ReadMessageAsync(_http.Request.BodyReader, parser, _runtime.Options.MaxReceiveMessageSize, RequestEncoding, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsResetOfCancelledCall(ex))
        {
            throw new OperationCanceledException("The call was cancelled.", ex, _cts.Token);
        }
        finally
        {
            ExitRead();
        }
    }

    /// <summary>Kestrel reports a reset stream as an IOException; to the handler it is a cancellation.</summary>
    private bool IsResetOfCancelledCall(Exception ex) =>
        ex is not RpcException && ex is not OperationCanceledException && _cts.IsCancellationRequested;

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

    private void WriteStatus(Status status, Metadata.Entry[]? trailers)
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

    private async ValueTask CloseReadsAsync()
    {
        _readClosed = true;
        if (Volatile.Read(ref _reading) != 0)
        {
            // A read is still in flight (a handler that returned without draining): cancel and wait it out.
            CancelHandler();
        }

        await TakeGateAsync(write: false).ConfigureAwait(false);
    }
}
