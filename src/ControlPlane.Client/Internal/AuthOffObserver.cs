namespace ControlPlane.Client.Internal;

/// <summary>Notes the scheduler's <c>cp-auth: off</c> response header, so tools can say that nothing checks callers there.</summary>
internal sealed class AuthOffObserver : DelegatingHandler
{
    private volatile bool _seen;

    public bool Seen => _seen;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!_seen && response.Headers.TryGetValues("cp-auth", out var values) && values.Contains("off", StringComparer.Ordinal))
        {
            _seen = true;
        }

        return response;
    }
}
