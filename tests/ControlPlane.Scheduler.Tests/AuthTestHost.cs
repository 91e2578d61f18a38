using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace ControlPlane.Scheduler.Tests;

/// <summary>A real SchedulerServer with authentication on (an admin token), its token store open to the test.</summary>
public sealed class AuthTestHost : IAsyncDisposable
{
    public const string AdminSecret = "cpt_test-admin-token-0123456789abcdef";

    private AuthTestHost(SchedulerServer server, EmbeddedNamespaceStores stores, EmbeddedTokenStore tokens, GrpcChannel channel)
    {
        Server = server;
        Stores = stores;
        Tokens = tokens;
        Channel = channel;
    }

    public SchedulerServer Server { get; }

    /// <summary>The default namespace's store.</summary>
    public IRunStore Store => Server.Store;

    /// <summary>Every namespace's store: the server serves them all.</summary>
    public EmbeddedNamespaceStores Stores { get; }

    public EmbeddedTokenStore Tokens { get; }

    public GrpcChannel Channel { get; }

    public static async Task<AuthTestHost> StartAsync(Action<SchedulerOptions>? configure = null, int maxNamespaces = Services.NamespaceDirectory.DefaultMaxNamespaces)
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", AdminToken = AdminSecret, HeartbeatInterval = TimeSpan.FromSeconds(1), LeaseDuration = TimeSpan.FromSeconds(10) };
        configure?.Invoke(options);
        var stores = new EmbeddedNamespaceStores(options.CreateStoreOptions());
        var tokens = new EmbeddedTokenStore();
        var server = new SchedulerServer(options, stores) { TokenStore = tokens, MaxNamespaces = maxNamespaces };
        await server.StartAsync();
        return new AuthTestHost(server, stores, tokens, GrpcChannel.ForAddress(server.Addresses[0].ToString()));
    }

    /// <summary>Stores a token directly (any expiry or revocation) and returns its secret.</summary>
    public async Task<string> AddTokenAsync(string name, TokenRole role, string ns = "default", string? agentId = null, DateTimeOffset? expiresAt = null, DateTimeOffset? revokedAt = null)
    {
        var secret = TokenSecrets.Create();
        await Tokens.PutAsync(new ApiToken(TokenSecrets.Hash(secret), name, role, ns, agentId, DateTimeOffset.UtcNow, expiresAt, revokedAt), replace: true, CancellationToken.None);
        return secret;
    }

    public static CallOptions With(string? authorization, CancellationToken cancellationToken = default) => InNamespace(authorization, null, cancellationToken);

    /// <summary>Call options with an authorization header and, unless <paramref name="ns"/> is null, a cp-namespace header.</summary>
    public static CallOptions InNamespace(string? authorization, string? ns, CancellationToken cancellationToken = default)
    {
        var headers = new Metadata();
        if (authorization is not null)
        {
            headers.Add("authorization", authorization);
        }

        if (ns is not null)
        {
            headers.Add(CallNamespace.Header, ns);
        }

        return new(headers, DateTime.UtcNow + ServiceTestHost.Timeout, cancellationToken);
    }

    public static CallOptions Bearer(string token, CancellationToken cancellationToken = default) => With("Bearer " + token, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
        await Stores.DisposeAsync();
    }
}
