using System.Net;
using ControlPlane.Interop;

namespace ControlPlane.InteropClient.Internal;

/// <summary>
/// An HTTP handler between RpcChannel and the socket that records each call's request and
/// response message flags as they cross the wire, so the compression cases can assert on
/// the compressed bit itself rather than on the library's own report of it.
/// </summary>
internal sealed class FrameObservingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private readonly Lock _gate = new();
    private readonly List<ObservedCall> _calls = new();

    public IReadOnlyList<ObservedCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return _calls.ToArray();
            }
        }
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = new ObservedCall(request.RequestUri!.AbsolutePath, request.Headers.TryGetValues("grpc-encoding", out var e) ? string.Join(",", e) : null);
        lock (_gate)
        {
            _calls.Add(call);
        }

        if (request.Content is not null)
        {
            request.Content = new ObservedContent(request.Content, call.RequestFrames);
        }

        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.OK)
        {
            response.Content = new ObservedContent(response.Content, call.ResponseFrames);
        }

        return response;
    }

    /// <summary>One call as seen on the wire.</summary>
    internal sealed record ObservedCall(string Path, string? RequestEncoding)
    {
        public GrpcFrameLog RequestFrames { get; } = new();

        public GrpcFrameLog ResponseFrames { get; } = new();
    }

    // Streams the inner content through a frame observer in either direction.
    private sealed class ObservedContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly GrpcFrameLog _log;

        public ObservedContent(HttpContent inner, GrpcFrameLog log)
        {
            _inner = inner;
            _log = log;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            _inner.CopyToAsync(new GrpcFrameObserverStream(stream, _log), context, cancellationToken);

        protected override async Task<Stream> CreateContentReadStreamAsync() =>
            new GrpcFrameObserverStream(await _inner.ReadAsStreamAsync().ConfigureAwait(false), _log);

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new GrpcFrameObserverStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _log);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
