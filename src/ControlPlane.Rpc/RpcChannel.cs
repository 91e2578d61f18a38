using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using ControlPlane.Rpc.Internal;
using Google.Protobuf;

namespace ControlPlane.Rpc;

/// <summary>
/// A client connection to one gRPC server over HTTP/2 ("http://" is h2c with prior knowledge, "https://"
/// is TLS with ALPN h2). Thread-safe; create one per server and share it, since it pools connections.
/// </summary>
public sealed class RpcChannel : IDisposable
{
    /// <summary>The user-agent sent on every call, in the spec's "grpc-{language}-{variant}/{version}" form.</summary>
    internal const string UserAgent = "grpc-dotnet-controlplane/1.0";

    private static readonly TimeSpan MinimumKeepAlive = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Uri> _methodUris = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly bool _disposeInvoker;

    private RpcChannel(Uri address, HttpMessageInvoker invoker, bool disposeInvoker, RpcChannelOptions options)
    {
        Address = address;
        Invoker = invoker;
        _disposeInvoker = disposeInvoker;
        MaxReceiveMessageSize = options.MaxReceiveMessageSize;
        MaxSendMessageSize = options.MaxSendMessageSize;
    }

    /// <summary>The server's base address.</summary>
    public Uri Address { get; }

    // HttpMessageInvoker, HttpClient's base: it hands back the response as soon as its headers arrive and skips
    // HttpClient's per-request timeout linking, which a per-call deadline makes redundant.
    internal HttpMessageInvoker Invoker { get; }

    internal int MaxReceiveMessageSize { get; }

    internal int? MaxSendMessageSize { get; }

    /// <summary>Fires when the channel is disposed, so calls still running end at once.</summary>
    internal CancellationToken DisposeToken => _disposeCts.Token;

    /// <summary>
    /// Creates a channel to <paramref name="address"/> ("http://127.0.0.1:5000" or "https://host:443");
    /// throws <see cref="ArgumentException"/> naming the bad address or option.
    /// </summary>
    public static RpcChannel ForAddress(string address, RpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        options ??= new RpcChannelOptions();
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException(
                $"Channel address '{address}' is not an absolute http:// or https:// URI; use e.g. \"http://127.0.0.1:5000\" (h2c) or \"https://host:443\" (TLS).",
                nameof(address));
        }

        Validate(options);
        if (options.HttpHandler is { } custom)
        {
            return new RpcChannel(uri, new HttpMessageInvoker(custom, disposeHandler: false), disposeInvoker: true, options);
        }

        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,

            // gRPC over h2c cannot cross an HTTP proxy; an environment proxy must not hijack the channel.
            UseProxy = false,
        };
        if (uri.Scheme == Uri.UriSchemeHttps)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = options.ServerCertificateValidation,
            };
        }

        return new RpcChannel(uri, new HttpMessageInvoker(handler, disposeHandler: true), disposeInvoker: true, options);
    }

    /// <summary>Starts a unary call.</summary>
    public AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        var call = CreateCall(method, MethodType.Unary, options);
        return new AsyncUnaryCall<TResponse>(call.StartUnary(request), call);
    }

    /// <summary>Starts a client-streaming call.</summary>
    public AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        var call = CreateCall(method, MethodType.ClientStreaming, options);
        var response = call.StartClientStreaming();
        return new AsyncClientStreamingCall<TRequest, TResponse>(new ClientRequestStream<TRequest, TResponse>(call), response, call);
    }

    /// <summary>Starts a server-streaming call.</summary>
    public AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        var call = CreateCall(method, MethodType.ServerStreaming, options);
        call.StartServerStreaming(request);
        return new AsyncServerStreamingCall<TResponse>(new ClientResponseStream<TRequest, TResponse>(call), call);
    }

    /// <summary>Starts a duplex-streaming call.</summary>
    public AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        var call = CreateCall(method, MethodType.DuplexStreaming, options);
        call.StartDuplexStreaming();
        return new AsyncDuplexStreamingCall<TRequest, TResponse>(
            new ClientRequestStream<TRequest, TResponse>(call),
            new ClientResponseStream<TRequest, TResponse>(call),
            call);
    }

    /// <summary>Closes the channel's connections; calls still running fail with CANCELLED.</summary>
    public void Dispose()
    {
        if (_disposeCts.IsCancellationRequested)
        {
            return;
        }

        _disposeCts.Cancel();
        if (_disposeInvoker)
        {
            Invoker.Dispose();
        }
    }

    internal Uri GetMethodUri(string fullName) =>
        _methodUris.GetOrAdd(fullName, static (name, address) => new Uri(address, name), Address);

    private static void Validate(RpcChannelOptions options)
    {
        if (options.MaxReceiveMessageSize <= 0)
        {
            throw new ArgumentException(
                $"RpcChannelOptions.MaxReceiveMessageSize must be a positive number of bytes; got {options.MaxReceiveMessageSize}.", nameof(options));
        }

        if (options.MaxSendMessageSize is <= 0)
        {
            throw new ArgumentException(
                $"RpcChannelOptions.MaxSendMessageSize must be a positive number of bytes or null for no limit; got {options.MaxSendMessageSize}.", nameof(options));
        }

        if (options.KeepAlivePingDelay < MinimumKeepAlive && options.KeepAlivePingDelay != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentException(
                $"RpcChannelOptions.KeepAlivePingDelay must be at least 1 s, or Timeout.InfiniteTimeSpan to turn pings off; got {options.KeepAlivePingDelay}.", nameof(options));
        }

        if (options.KeepAlivePingTimeout < MinimumKeepAlive && options.KeepAlivePingTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentException(
                $"RpcChannelOptions.KeepAlivePingTimeout must be at least 1 s, or Timeout.InfiniteTimeSpan; got {options.KeepAlivePingTimeout}.", nameof(options));
        }
    }

    private ClientCall<TRequest, TResponse> CreateCall<TRequest, TResponse>(Method<TRequest, TResponse> method, MethodType type, CallOptions options)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ObjectDisposedException.ThrowIf(_disposeCts.IsCancellationRequested, this);
        ArgumentNullException.ThrowIfNull(method);
        if (method.Type != type)
        {
            throw new ArgumentException(
                $"Method {method.FullName} is {MethodTypes.Describe(method.Type)}; call it with the matching channel method, not the {MethodTypes.Describe(type)} one.",
                nameof(method));
        }

        return new ClientCall<TRequest, TResponse>(this, method, options);
    }
}
