using Microsoft.AspNetCore.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>Answers UNIMPLEMENTED for unknown services, unknown methods and proto methods without a handler.</summary>
internal sealed class UnimplementedHandler
{
    private readonly ServerRuntime _runtime;
    private readonly string? _detail;

    public UnimplementedHandler(ServerRuntime runtime, string? detail)
    {
        _runtime = runtime;
        _detail = detail;
    }

    public Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? string.Empty;
        if (!ServerProtocol.ValidateRequest(http, _runtime, path))
        {
            return Task.CompletedTask;
        }

        ServerLog.Unimplemented(_runtime.Logger, path);
        ServerProtocol.WriteTrailersOnly(http, new Status(StatusCode.Unimplemented, _detail ?? $"Method {path} is not implemented by this server."), null);
        return Task.CompletedTask;
    }
}
