namespace ControlPlane.Rpc.Testing;

/// <summary>
/// A call context for unit-testing handlers without a server: give it headers, a deadline and a
/// cancellation token, call the handler, then read the status, trailers and response headers it set.
/// </summary>
public sealed class TestServerCallContext : ServerCallContext
{
    private readonly Dictionary<object, object> _userState = new();
    private readonly Func<Metadata, Task>? _writeHeaders;

    private TestServerCallContext(string method, string host, string peer, DateTime deadline, Metadata requestHeaders, CancellationToken cancellationToken, Func<Metadata, Task>? writeHeaders)
    {
        Method = method;
        Host = host;
        Peer = peer;
        Deadline = deadline;
        RequestHeaders = requestHeaders;
        CancellationToken = cancellationToken;
        _writeHeaders = writeHeaders;
    }

    public override string Method { get; }

    public override string Host { get; }

    public override string Peer { get; }

    public override DateTime Deadline { get; }

    public override Metadata RequestHeaders { get; }

    public override CancellationToken CancellationToken { get; }

    public override Metadata ResponseTrailers { get; } = new();

    public override Status Status { get; set; } = Status.DefaultSuccess;

    public override WriteOptions? WriteOptions { get; set; }

    public override string? ResponseCompression { get; set; }

    public override IDictionary<object, object> UserState => _userState;

    /// <summary>The headers the handler sent with WriteResponseHeadersAsync; null when it sent none.</summary>
    public Metadata? ResponseHeaders { get; private set; }

    /// <summary>Creates a context; every argument is optional.</summary>
    /// <param name="method">Full method name. Default "/test.Service/Method".</param>
    /// <param name="host">Host. Default "localhost".</param>
    /// <param name="deadline">UTC deadline. Default none (<see cref="DateTime.MaxValue"/>).</param>
    /// <param name="requestHeaders">Request metadata. Default empty.</param>
    /// <param name="cancellationToken">The handler's token. Default none.</param>
    /// <param name="peer">Peer. Default "ipv4:127.0.0.1:50000".</param>
    /// <param name="writeHeaders">Called when the handler writes response headers.</param>
    public static TestServerCallContext Create(
        string method = "/test.Service/Method",
        string host = "localhost",
        DateTime? deadline = null,
        Metadata? requestHeaders = null,
        CancellationToken cancellationToken = default,
        string peer = "ipv4:127.0.0.1:50000",
        Func<Metadata, Task>? writeHeaders = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        return new TestServerCallContext(method, host, peer, deadline ?? DateTime.MaxValue, requestHeaders ?? new Metadata(), cancellationToken, writeHeaders);
    }

    public override Task WriteResponseHeadersAsync(Metadata responseHeaders)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        if (ResponseHeaders is not null)
        {
            throw new InvalidOperationException("Response headers were already sent; WriteResponseHeadersAsync may be called once, before the first message.");
        }

        ResponseHeaders = responseHeaders;
        return _writeHeaders?.Invoke(responseHeaders) ?? Task.CompletedTask;
    }
}
