using System.Net.Http.Headers;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// The state every client call shares whatever its message types: the final status and trailers,
/// the response headers, and cancellation. The status is set exactly once.
/// </summary>
internal abstract class ClientCallBase : IDisposable
{
    private readonly object _gate = new();
    private StatusBox? _final;
    private Metadata? _responseHeaders;
    private HttpHeaders? _rawResponseHeaders;
    private TaskCompletionSource<Metadata>? _responseHeadersTcs;

    /// <summary>Fires when the call must stop: cancellation, deadline, local error.</summary>
    protected CancellationTokenSource CallCts { get; } = new();

    /// <summary>True once the status is known.</summary>
    public bool IsFinished => Volatile.Read(ref _final) is not null;

    /// <summary>The response headers, or the failure that ended the call before they arrived.</summary>
    public Task<Metadata> ResponseHeadersAsync
    {
        get
        {
            lock (_gate)
            {
                if (_responseHeaders is not null)
                {
                    return Task.FromResult(_responseHeaders);
                }

                if (_rawResponseHeaders is not null)
                {
                    _responseHeaders = MetadataHeaders.FromHttpHeaders(_rawResponseHeaders.NonValidated);
                    return Task.FromResult(_responseHeaders);
                }

                if (_final is not null)
                {
                    return _final.Status.StatusCode == StatusCode.OK
                        ? Task.FromResult(new Metadata())
                        : Task.FromException<Metadata>(_final.ToException());
                }

                // Created only when asked for, so an unobserved failure never faults a task nobody awaits.
                return (_responseHeadersTcs ??= new TaskCompletionSource<Metadata>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }
    }

    public Status GetStatus() =>
        Volatile.Read(ref _final)?.Status
        ?? throw new InvalidOperationException("Unable to get the status because the call is not complete; await the response or read the response stream to its end first.");

    public Metadata GetTrailers() =>
        Volatile.Read(ref _final)?.Trailers
        ?? throw new InvalidOperationException("Unable to get the trailers because the call is not complete; await the response or read the response stream to its end first.");

    /// <summary>Cancels the call if it is still running: RST_STREAM to the server, CANCELLED locally.</summary>
    public void Dispose() => Cancel(new Status(StatusCode.Cancelled, "The call was disposed before it completed."));

    /// <summary>Ends the call with a local status (cancellation, deadline); no-op once finished.</summary>
    public void Cancel(Status status)
    {
        if (Finish(status, new Metadata()))
        {
            Abort();
        }
    }

    /// <summary>The exception that reports the final status; null while the call runs.</summary>
    protected RpcException? FinalException() => Volatile.Read(ref _final)?.ToException();

    protected Status? FinalStatus => Volatile.Read(ref _final)?.Status;

    protected void SetResponseHeaders(Metadata headers)
    {
        TaskCompletionSource<Metadata>? tcs;
        lock (_gate)
        {
            if (_responseHeaders is not null || _rawResponseHeaders is not null || _final is not null)
            {
                return;
            }

            _responseHeaders = headers;
            tcs = _responseHeadersTcs;
        }

        tcs?.TrySetResult(headers);
    }

    /// <summary>Records the response headers as received; they become Metadata only if someone asks for them.</summary>
    protected void SetResponseHeaders(HttpHeaders headers)
    {
        lock (_gate)
        {
            if (_responseHeaders is not null || _rawResponseHeaders is not null || _final is not null)
            {
                return;
            }

            if (_responseHeadersTcs is null)
            {
                _rawResponseHeaders = headers;
                return;
            }
        }

        SetResponseHeaders(MetadataHeaders.FromHttpHeaders(headers.NonValidated));
    }

    /// <summary>Records the final status; false when another path got there first.</summary>
    protected bool Finish(Status status, Metadata trailers) => Finish(new StatusBox(status, trailers, null));

    /// <summary>Records the final status with trailers as received; they become Metadata only if someone asks for them.</summary>
    protected bool Finish(Status status, HttpHeaders trailers) => Finish(new StatusBox(status, null, trailers));

    private bool Finish(StatusBox box)
    {
        var status = box.Status;
        if (Interlocked.CompareExchange(ref _final, box, null) is not null)
        {
            return false;
        }

        TaskCompletionSource<Metadata>? tcs;
        lock (_gate)
        {
            tcs = _responseHeaders is null && _rawResponseHeaders is null ? _responseHeadersTcs : null;
        }

        OnFinished();
        if (status.StatusCode == StatusCode.OK)
        {
            tcs?.TrySetResult(new Metadata());
        }
        else
        {
            tcs?.TrySetException(box.ToException());
        }

        return true;
    }

    /// <summary>Runs once, right after the status is recorded.</summary>
    protected abstract void OnFinished();

    /// <summary>Stops the HTTP/2 stream (RST_STREAM) after a local failure or cancellation.</summary>
    protected abstract void Abort();

    private sealed class StatusBox(Status status, Metadata? trailers, HttpHeaders? rawTrailers)
    {
        private Metadata? _trailers = trailers;

        public Status Status { get; } = status;

        public Metadata Trailers
        {
            get
            {
                var trailers = Volatile.Read(ref _trailers);
                if (trailers is null)
                {
                    trailers = MetadataHeaders.FromHttpHeaders(rawTrailers!.NonValidated);
                    trailers = Interlocked.CompareExchange(ref _trailers, trailers, null) ?? trailers;
                }

                return trailers;
            }
        }

        public RpcException ToException() => new(Status, Trailers);
    }
}
