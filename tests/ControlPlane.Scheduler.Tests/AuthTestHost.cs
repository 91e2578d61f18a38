using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace ControlPlane.Scheduler.Tests;

/// <summary>A real SchedulerServer with authentication on (an admin token), its token store open to the test.</summary>
public sealed class AuthTestHost : IAsyncDisposable
{
    public const string AdminSecret = "cpt_test-admin-token-0123456789abcdef";

    private AuthTestHost(SchedulerServer server, EmbeddedRunStore store, EmbeddedTokenStore tokens, GrpcChannel channel)
    {
        Server = server;
        Store = store;
        Tokens = tokens;
        Channel = channel;
    }

    public SchedulerServer Server { get; }

    public EmbeddedRunStore Store { get; }

    public EmbeddedTokenStore Tokens { get; }

    public GrpcChannel Channel { get; }

    public static async Task<AuthTestHost> StartAsync(Action<SchedulerOptions>? configure = null)
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", AdminToken = AdminSecret, HeartbeatInterval = TimeSpan.FromSeconds(1), LeaseDuration = TimeSpan.FromSeconds(10) };
        configure?.Invoke(options);
        var store = new EmbeddedRunStore(options.CreateStoreOptions());
        var tokens = new EmbeddedTokenStore();
        var server = new SchedulerServer(options, store) { TokenStore = tokens };
        await server.StartAsync();
        return new AuthTestHost(server, store, tokens, GrpcChannel.ForAddress(server.Addresses[0].ToString()));
    }

    /// <summary>Stores a token directly (any expiry or revocation) and returns its secret.</summary>
    public async Task<string> AddTokenAsync(string name, TokenRole role, string ns = "default", string? agentId = null, DateTimeOffset? expiresAt = null, DateTimeOffset? revokedAt = null)
    {
        var secret = TokenSecrets.Create();
        await Tokens.PutAsync(new ApiToken(TokenSecrets.Hash(secret), name, role, ns, agentId, DateTimeOffset.UtcNow, expiresAt, revokedAt), replace: true, CancellationToken.None);
        return secret;
    }

    public static CallOptions With(string? authorization, CancellationToken cancellationToken = default) =>
        new(authorization is null ? null : new Metadata { { "authorization", authorization } }, DateTime.UtcNow + ServiceTestHost.Timeout, cancellationToken);

    public static CallOptions Bearer(string token, CancellationToken cancellationToken = default) => With("Bearer " + token, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}
