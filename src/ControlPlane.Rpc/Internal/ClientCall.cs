using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// One call on an <see cref="RpcChannel"/>: builds the HTTP/2 request, sends request messages, reads
/// response headers, messages and trailers, and turns every way a call can end into one status.
/// </summary>
internal sealed class ClientCall<TRequest, TResponse> : ClientCallBase
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    private static readonly Status DeadlineExceeded = new(StatusCode.DeadlineExceeded, "Deadline Exceeded");
    private static readonly Status CancelledByToken = new(StatusCode.Cancelled, "The call was cancelled through CallOptions.CancellationToken.");
    private static readonly Status CancelledByReadToken = new(StatusCode.Cancelled, "The call was cancelled through the token passed to MoveNext.");
    private static readonly Status CancelledByWriteToken = new(StatusCode.Cancelled, "The call was cancelled through the token passed to WriteAsync.");
    private static readonly Status CancelledByChannel = new(StatusCode.Cancelled, "The channel was disposed while the call was running.");

    private readonly RpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly DateTime _deadline;
    private readonly bool _compress;
    private string? _timeoutHeader;
    private Timer? _deadlineTimer;
    private CancellationTokenRegistration _cancellationRegistration;
    private CancellationTokenRegistration _channelRegistration;
    private ClientStreamingContent? _requestContent;
    private HttpResponseMessage? _response;
    private Task<HttpResponseMessage?>? _responseTask;
    private Task<TResponse>? _unaryResponse;
    private string? _responseEncoding;
    private (Status Status, Metadata Trailers)? _trailersOnly;
    private ClientMessageReader? _reader;
    private int _readPending;
    private int _writePending;
    private volatile bool _requestCompleted;

    public ClientCall(RpcChannel channel, Method<TRequest, TResponse> method, CallOptions options)
    {
        ArgumentNullException.ThrowIfNull(method);
        _channel = channel;
        _method = method;
        _options = options;
        _deadline = options.Deadline switch
        {
            null => DateTime.MaxValue,
            { Kind: DateTimeKind.Local } local => local.ToUniversalTime(),
            { } utc => utc,
        };

        _compress = options.RequestCompression switch
        {
            null or GrpcProtocol.Identity => false,
            GrpcProtocol.Gzip => true,
            _ => throw new ArgumentException(
                $"CallOptions.RequestCompression '{options.RequestCompression}' is not supported; use \"gzip\" or null.", nameof(options)),
        };

        if (options.Headers is { } headers)
        {
            foreach (var entry in headers)
            {
                if (MetadataHeaders.IsReserved(entry.Key))
                {
                    throw new ArgumentException(
                        $"CallOptions.Headers contains '{entry.Key}', a header reserved by the gRPC protocol; use another key.", nameof(options));
                }
            }
        }
    }

    /// <summary>The message read by the last successful <see cref="MoveNextAsync"/>.</summary>
    public TResponse Current { get; private set; } = default!;

    /// <summary>Write options of the request stream; starts as CallOptions.WriteOptions.</summary>
    public WriteOptions? WriteOptions { get; set; }

    private bool DeadlinePassed => _deadline != DateTime.MaxValue && DateTime.UtcNow >= _deadline;

    public Task<TResponse> StartUnary(TRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!Begin())
        {
            return Task.FromException<TResponse>(FinalException()!);
        }

        byte[] frame;
        try
        {
            frame = ClientFraming.Frame(request, _compress && _options.WriteOptions?.NoCompress != true, _channel.MaxSendMessageSize, pooled: false, out _);
        }
        catch (RpcException ex)
        {
            Cancel(ex.Status);
            return Task.FromException<TResponse>(FinalException()!);
        }

        return ReadUnaryResponseAsync(CreateRequest(new ClientUnaryContent(frame)));
    }

    public Task<TResponse> StartClientStreaming()
    {
        WriteOptions = _options.WriteOptions;
        _requestContent = new ClientStreamingContent();
        if (!Begin())
        {
            return _unaryResponse = Task.FromException<TResponse>(FinalException()!);
        }

        return _unaryResponse = ReadUnaryResponseAsync(CreateRequest(_requestContent));
    }

    public void StartServerStreaming(TRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!Begin())
        {
            return;
        }

        byte[] frame;
        try
        {
            frame = ClientFraming.Frame(request, _compress && _options.WriteOptions?.NoCompress != true, _channel.MaxSendMessageSize, pooled: false, out _);
        }
        catch (RpcException ex)
        {
            Cancel(ex.Status);
            return;
        }

        _responseTask = SendAsync(CreateRequest(new ClientUnaryContent(frame)));
    }

    public void StartDuplexStreaming()
    {
        WriteOptions = _options.WriteOptions;
        _requestContent = new ClientStreamingContent();
        if (Begin())
        {
            _responseTask = SendAsync(CreateRequest(_requestContent));
        }
    }

    /// <summary>Reads the next response message of a streaming call; false once the call ended OK.</summary>
    public async Task<bool> MoveNextAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _readPending, 1) != 0)
        {
            throw new InvalidOperationException("Can't read the next message because the previous read is still in progress; await MoveNext before calling it again.");
        }

        CancellationTokenRegistration registration = default;
        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                registration = cancellationToken.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).Cancel(CancelledByReadToken), this);
            }

            if (FinalStatus is not null)
            {
                return EndOfStream();
            }

            var response = _responseTask is null ? null : await _responseTask.ConfigureAwait(false);
            if (response is null)
            {
                if (_trailersOnly is { } early)
                {
                    Finish(early.Status, early.Trailers);
                }

                return EndOfStream();
            }

            var reader = _reader ??= new ClientMessageReader(
                await response.Content.ReadAsStreamAsync(CallCts.Token).ConfigureAwait(false),
                _channel.MaxReceiveMessageSize,
                _responseEncoding);
            if (await reader.MoveNextAsync(CallCts.Token).ConfigureAwait(false))
            {
                Current = MessageParsers<TResponse>.Parser.ParseFrom(reader.Current.Span);
                return true;
            }

            reader.Release();
            var (status, trailers) = ReadTrailers(response);
            Finish(status, trailers);
            return EndOfStream();
        }
        catch (Exception ex) when (ex is not InvalidOperationException)
        {
            _reader?.Release();
            throw Fail(ex);
        }
        finally
        {
            registration.Dispose();
            Volatile.Write(ref _readPending, 0);
        }
    }

    /// <summary>Sends one request message of a client-streaming or duplex call.</summary>
    public async Task WriteAsync(TRequest message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_requestCompleted)
        {
            throw new InvalidOperationException("The request stream has already been completed; no more messages can be written.");
        }

        if (FinalStatus is { } done)
        {
            throw done.StatusCode == StatusCode.OK
                ? new InvalidOperationException("The call has already finished; the message was not sent.")
                : FinalException()!;
        }

        if (Interlocked.Exchange(ref _writePending, 1) != 0)
        {
            throw new InvalidOperationException("Only one write can be pending at a time; await the previous WriteAsync first.");
        }

        byte[]? buffer = null;
        CancellationTokenRegistration registration = default;
        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                registration = cancellationToken.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).Cancel(CancelledByWriteToken), this);
            }

            buffer = ClientFraming.Frame(message, _compress && WriteOptions?.NoCompress != true, _channel.MaxSendMessageSize, pooled: true, out var length);
            var streamTask = _requestContent!.RequestStream;
            var stream = streamTask.IsCompletedSuccessfully ? streamTask.Result : await streamTask.WaitAsync(CallCts.Token).ConfigureAwait(false);
            await stream.WriteAsync(buffer.AsMemory(0, length), CallCts.Token).ConfigureAwait(false);
            if (WriteOptions?.BufferHint != true)
            {
                await stream.FlushAsync(CallCts.Token).ConfigureAwait(false);
            }
        }
        catch (RpcException ex) when (!IsFinished)
        {
            // The message broke the send limit: the call cannot continue with a hole in its stream.
            Cancel(ex.Status);
            throw FinalException()!;
        }
        catch (Exception ex)
        {
            throw await WriteFailureAsync(ex).ConfigureAwait(false);
        }
        finally
        {
            registration.Dispose();
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            Volatile.Write(ref _writePending, 0);
        }
    }

    /// <summary>Half-closes the request stream: END_STREAM follows the messages already written.</summary>
    public Task CompleteRequestAsync()
    {
        if (Volatile.Read(ref _writePending) != 0)
        {
            throw new InvalidOperationException("Can't complete the request stream while a write is pending; await WriteAsync first.");
        }

        _requestCompleted = true;
        _requestContent!.Complete();
        return Task.CompletedTask;
    }

    protected override void OnFinished()
    {
        _deadlineTimer?.Dispose();
        _cancellationRegistration.Unregister();
        _channelRegistration.Unregister();
        _requestContent?.Abort();
        Volatile.Read(ref _response)?.Dispose();
    }

    protected override void Abort()
    {
        try
        {
            CallCts.Cancel();
        }
        catch (AggregateException)
        {
            // A transport callback failed while resetting the stream; the call is over either way.
        }

        Volatile.Read(ref _response)?.Dispose();
    }

    /// <summary>Arms the deadline and the caller's token; false when either already ended the call.</summary>
    private bool Begin()
    {
        var token = _options.CancellationToken;
        if (token.IsCancellationRequested)
        {
            Finish(CancelledByToken, new Metadata());
            return false;
        }

        if (_deadline != DateTime.MaxValue)
        {
            var timeout = _deadline - DateTime.UtcNow;
            if (timeout <= TimeSpan.Zero)
            {
                Finish(DeadlineExceeded, new Metadata());
                return false;
            }

            _timeoutHeader = GrpcTimeout.Format(timeout);
            _deadlineTimer = new Timer(static s => ((ClientCall<TRequest, TResponse>)s!).OnDeadline(), this, ClampTimerDue(timeout), Timeout.InfiniteTimeSpan);
        }

        if (token.CanBeCanceled)
        {
            _cancellationRegistration = token.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).Cancel(CancelledByToken), this);
        }

        _channelRegistration = _channel.DisposeToken.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).Cancel(CancelledByChannel), this);
        return !IsFinished;
    }

    private static TimeSpan ClampTimerDue(TimeSpan due)
    {
        // Timers accept at most 0xFFFFFFFE ms; longer deadlines re-arm from OnDeadline.
        var max = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        return due > max ? max : due;
    }

    private void OnDeadline()
    {
        var remaining = _deadline - DateTime.UtcNow;
        if (remaining > TimeSpan.Zero && !IsFinished)
        {
            _deadlineTimer?.Change(ClampTimerDue(remaining), Timeout.InfiniteTimeSpan);
            return;
        }

        Cancel(DeadlineExceeded);
    }

    private HttpRequestMessage CreateRequest(HttpContent content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, _channel.GetMethodUri(_method.FullName))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };

        var headers = request.Headers;
        if (_timeoutHeader is not null)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, _timeoutHeader);
        }

        headers.TryAddWithoutValidation(GrpcProtocol.TeHeader, GrpcProtocol.TeTrailers);
        headers.TryAddWithoutValidation("user-agent", RpcChannel.UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
        if (_compress)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, GrpcProtocol.Gzip);
        }

        if (_options.Headers is { } metadata)
        {
            foreach (var entry in metadata)
            {
                headers.TryAddWithoutValidation(entry.Key, MetadataHeaders.EncodeValue(entry));
            }
        }

        return request;
    }

    /// <summary>Sends the request and checks the response headers; null when the call ended without a body to read.</summary>
    private async Task<HttpResponseMessage?> SendAsync(HttpRequestMessage request)
    {
        HttpResponseMessage response;
        try
        {
            response = await _channel.Invoker.SendAsync(request, CallCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Fail(ex);
            return null;
        }

        return AcceptResponse(response);
    }

    /// <summary>Takes the response once its headers arrived; null when the call ended without a body to read.</summary>
    private HttpResponseMessage? AcceptResponse(HttpResponseMessage response)
    {
        // Full fence before reading IsFinished, so a concurrent cancellation either sees the response or is seen here.
        Interlocked.Exchange(ref _response, response);
        if (IsFinished)
        {
            response.Dispose();
            return null;
        }

        try
        {
            return CheckResponseHeaders(response) ? response : null;
        }
        catch (Exception ex)
        {
            Fail(ex);
            return null;
        }
    }

    /// <summary>True when messages follow; otherwise the call ended in the headers (Trailers-Only or not a gRPC response).</summary>
    private bool CheckResponseHeaders(HttpResponseMessage response)
    {
        var headers = response.Headers.NonValidated;
        var grpcStatus = GetHeader(headers, GrpcProtocol.StatusHeader);
        if (grpcStatus is not null)
        {
            // Trailers-Only: the status travels in the only HEADERS frame.
            SetResponseHeaders(new Metadata());
            _trailersOnly = (ParseStatus(grpcStatus, GetHeader(headers, GrpcProtocol.MessageHeader)), MetadataHeaders.FromHttpHeaders(headers));
            return false;
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            Cancel(new Status(
                ClientStatusMapping.FromHttpStatus(response.StatusCode),
                $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}."));
            return false;
        }

        var contentType = GetHeader(response.Content.Headers.NonValidated, "content-type");
        if (!GrpcProtocol.IsGrpcContentType(contentType))
        {
            Cancel(new Status(StatusCode.Unknown, $"Bad gRPC response. Invalid content-type value: '{contentType}'."));
            return false;
        }

        _responseEncoding = GetHeader(headers, GrpcProtocol.EncodingHeader);
        SetResponseHeaders(response.Headers);
        return true;
    }

    /// <summary>Sends the request and reads the single response of a unary or client-streaming call, in one state machine.</summary>
    private async Task<TResponse> ReadUnaryResponseAsync(HttpRequestMessage request)
    {
        HttpResponseMessage? response = null;
        try
        {
            response = await _channel.Invoker.SendAsync(request, CallCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Fail(ex);
        }

        response = response is null ? null : AcceptResponse(response);
        ClientMessageReader? reader = null;
        try
        {
            Status status;
            Metadata? trailers = null;
            HttpHeaders? rawTrailers = null;
            var message = default(TResponse);
            if (response is null)
            {
                if (_trailersOnly is not { } early)
                {
                    throw FinalException()!;
                }

                (status, trailers) = early;
            }
            else
            {
                reader = new ClientMessageReader(
                    await response.Content.ReadAsStreamAsync(CallCts.Token).ConfigureAwait(false),
                    _channel.MaxReceiveMessageSize,
                    _responseEncoding);
                if (await reader.MoveNextAsync(CallCts.Token).ConfigureAwait(false))
                {
                    message = MessageParsers<TResponse>.Parser.ParseFrom(reader.Current.Span);
                    if (await reader.MoveNextAsync(CallCts.Token).ConfigureAwait(false))
                    {
                        throw new RpcException(new Status(StatusCode.Internal, "The server sent more than one message in the response of a unary call."));
                    }
                }

                (status, rawTrailers) = ReadTrailers(response);
            }

            if (status.StatusCode == StatusCode.OK && message is null)
            {
                status = new Status(StatusCode.Internal, "The server ended the call with OK but sent no response message.");
            }

            if (rawTrailers is not null)
            {
                Finish(status, rawTrailers);
            }
            else
            {
                Finish(status, trailers!);
            }
            return FinalStatus!.Value.StatusCode == StatusCode.OK ? message! : throw FinalException()!;
        }
        catch (Exception ex) when (ex is not RpcException || !IsFinished)
        {
            throw Fail(ex);
        }
        finally
        {
            reader?.Release();
        }
    }

    private bool EndOfStream() =>
        FinalStatus!.Value.StatusCode == StatusCode.OK ? false : throw FinalException()!;

    /// <summary>Ends the call with the status an exception maps to (unless it already ended) and returns the final exception.</summary>
    private RpcException Fail(Exception exception)
    {
        if (!IsFinished)
        {
            var status = exception is InvalidProtocolBufferException
                ? new Status(StatusCode.Internal, "Failed to deserialize the response message: " + exception.Message)
                : ClientStatusMapping.FromException(exception, DeadlinePassed);
            Cancel(status);
        }

        return FinalException()!;
    }

    private async Task<Exception> WriteFailureAsync(Exception exception)
    {
        if (!IsFinished && _trailersOnly is { } early)
        {
            Finish(early.Status, early.Trailers);
        }

        if (!IsFinished && _unaryResponse is { } response)
        {
            // The server ended a client-streaming call early: its status is what the caller needs.
            await ((Task)response).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (FinalStatus is { } status)
        {
            return status.StatusCode == StatusCode.OK
                ? new InvalidOperationException("The call finished before the message was sent.", exception)
                : FinalException()!;
        }

        return new RpcException(
            new Status(StatusCode.Unavailable, $"The request stream closed before the message was sent ({exception.Message}); read the response stream for the call's status."),
            new Metadata(),
            exception);
    }

    private static (Status Status, HttpHeaders Trailers) ReadTrailers(HttpResponseMessage response)
    {
        var trailers = response.TrailingHeaders;
        var values = trailers.NonValidated;
        var status = ParseStatus(GetHeader(values, GrpcProtocol.StatusHeader), GetHeader(values, GrpcProtocol.MessageHeader));
        return (status, trailers);
    }

    private static Status ParseStatus(string? value, string? message)
    {
        if (value is null)
        {
            return new Status(StatusCode.Unknown, "The response ended without a grpc-status trailer.");
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            return new Status(StatusCode.Unknown, $"The response carries an invalid grpc-status '{value}'.");
        }

        return new Status((StatusCode)code, message is null ? string.Empty : PercentEncoding.Decode(message));
    }

    private static string? GetHeader(HttpHeadersNonValidated headers, string name)
    {
        if (!headers.TryGetValues(name, out var values))
        {
            return null;
        }

        if (values.Count == 1)
        {
            foreach (var value in values)
            {
                return value;
            }
        }

        return values.ToString();
    }
}
