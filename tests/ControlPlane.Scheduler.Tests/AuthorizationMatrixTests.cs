using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// Every RPC of every controlplane.v1 service (RunService, AdminService, AuthService, SecretService, AuditService, AgentService),
/// enumerated from the generated descriptors, called
/// over a real channel with every kind of credential; the expected code of each cell comes from the one
/// <see cref="AuthorizationTable"/>, so a new RPC without a row fails here.
/// </summary>
public sealed class AuthorizationMatrixTests
{
    // Every service of every controlplane.v1 file in the generated assembly, so a new service is covered without a list here.
    private static readonly ServiceDescriptor[] Services = typeof(RunService).Assembly.GetTypes()
        .Where(t => t.Namespace == "ControlPlane.V1" && t.Name.EndsWith("Reflection", StringComparison.Ordinal))
        .Select(t => (FileDescriptor)t.GetProperty("Descriptor")!.GetValue(null)!)
        .SelectMany(f => f.Services)
        .OrderBy(s => s.FullName, StringComparer.Ordinal)
        .ToArray();

    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    private static IEnumerable<MethodDescriptor> AllMethods => Services.SelectMany(s => s.Methods);

    private static string FullName(MethodDescriptor m) => $"/{m.Service.FullName}/{m.Name}";

    [Fact]
    public void Table_EveryRpcOfEveryService_HasARow()
    {
        var missing = AllMethods.Select(FullName).Where(name => !AuthorizationTable.Methods.ContainsKey(name)).ToList();

        Assert.True(missing.Count == 0, $"RPCs without a row in AuthorizationTable.Methods: {string.Join(", ", missing)}");
        Assert.Contains(AllMethods, m => m.Name == "Connect");
        Assert.Contains(AllMethods, m => m.Name == "SetSecret");
    }

    [Fact]
    public async Task EveryRpc_EveryCredential_ExpectedCode()
    {
        await using var host = await AuthTestHost.StartAsync();
        var now = DateTimeOffset.UtcNow;
        var teamB = "Bearer " + await host.AddTokenAsync("elsewhere", TokenRole.Admin, "team-b");
        var cells = new List<(string Cell, string? Authorization, string? Namespace, Func<string, bool?> Allowed)>
        {
            ("no token", null, null, _ => null),
            ("malformed: not Bearer", "Basic dXNlcjpwYXNz", null, _ => null),
            ("malformed: too short", "Bearer abc", null, _ => null),
            ("unknown", "Bearer " + TokenSecrets.Create(), null, _ => null),
            ("expired", "Bearer " + await host.AddTokenAsync("old", TokenRole.Admin, "*", expiresAt: now.AddMinutes(-1)), null, _ => null),
            ("revoked", "Bearer " + await host.AddTokenAsync("gone", TokenRole.Admin, "*", revokedAt: now.AddMinutes(-1)), null, _ => null),
            ("wrong namespace: a team-b admin token naming default", teamB, "default", _ => false),
            ("own namespace: a team-b admin token in team-b", teamB, null, m => AuthorizationTable.Allows(TokenRole.Admin, m)),
            ("admin token of the configuration", "Bearer " + AuthTestHost.AdminSecret, null, m => AuthorizationTable.Allows(TokenRole.Admin, m)),
            ("admin token of the configuration naming team-b", "Bearer " + AuthTestHost.AdminSecret, "team-b", m => AuthorizationTable.Allows(TokenRole.Admin, m)),
        };
        foreach (var role in AuthorizationTable.Roles.Keys)
        {
            var secret = await host.AddTokenAsync("role-" + AuthorizationTable.RoleName(role), role, AuthorizationTable.MaySpanNamespaces(role) ? "*" : "default");
            cells.Add(("role " + AuthorizationTable.RoleName(role), "Bearer " + secret, null, m => AuthorizationTable.Allows(role, m)));
            if (!AuthorizationTable.MaySpanNamespaces(role))
            {
                cells.Add(("role " + AuthorizationTable.RoleName(role) + " of default naming team-b", "Bearer " + secret, "team-b", _ => false));
            }
        }

        var failures = new List<string>();
        foreach (var method in AllMethods)
        {
            foreach (var (cell, authorization, ns, allowed) in cells)
            {
                var expected = allowed(FullName(method)) switch
                {
                    null => "UNAUTHENTICATED",
                    false => "PERMISSION_DENIED",
                    true => "not denied",
                };
                var status = await CallAsync(host, method, authorization, ns);
                var actual = status.StatusCode switch
                {
                    StatusCode.Unauthenticated => "UNAUTHENTICATED",
                    StatusCode.PermissionDenied => "PERMISSION_DENIED",
                    _ => "not denied",
                };
                if (actual != expected)
                {
                    failures.Add($"{FullName(method)} × {cell}: expected {expected}, got {status.StatusCode} ({status.Detail})");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Health_NoToken_Serving()
    {
        await using var host = await AuthTestHost.StartAsync();

        var response = await new Grpc.Health.V1.Health.HealthClient(host.Channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), AuthTestHost.With(null));

        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
    }

    [Theory]
    [InlineData(null, ErrorReason.TokenMissing)]
    [InlineData("Bearer abc", ErrorReason.TokenMalformed)]
    [InlineData("Bearer cpt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ErrorReason.TokenUnknown)]
    public async Task Refusal_CarriesTheReason(string? authorization, ErrorReason reason)
    {
        await using var host = await AuthTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => new RunService.RunServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest(), AuthTestHost.With(authorization)).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Equal(reason, ReasonOf(ex));
    }

    [Fact]
    public async Task Revoked_NamesTheTokenInErrorInfo()
    {
        await using var host = await AuthTestHost.StartAsync();
        var secret = await host.AddTokenAsync("ci", TokenRole.Reader, revokedAt: DateTimeOffset.UtcNow);

        var ex = await Assert.ThrowsAsync<RpcException>(() => new RunService.RunServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest(), AuthTestHost.Bearer(secret)).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Equal(ErrorReason.TokenRevoked, ReasonOf(ex));
        Assert.Equal("ci", InfoOf(ex)!.Metadata["token_name"]);
    }

    public static Google.Rpc.ErrorInfo? InfoOf(RpcException ex) => ex.GetRpcStatus()?.GetDetail<Google.Rpc.ErrorInfo>();

    public static ErrorReason ReasonOf(RpcException ex) =>
        InfoOf(ex) is { } info ? (ErrorReason)ErrorsReflection.Descriptor.EnumTypes[0].FindValueByName(info.Reason).Number : ErrorReason.Unspecified;

    /// <summary>Calls any method with an empty request; returns the status it ended with.</summary>
    private static async Task<Status> CallAsync(AuthTestHost host, MethodDescriptor descriptor, string? authorization, string? ns)
    {
        var type = (descriptor.IsClientStreaming, descriptor.IsServerStreaming) switch
        {
            (false, false) => MethodType.Unary,
            (false, true) => MethodType.ServerStreaming,
            (true, false) => MethodType.ClientStreaming,
            (true, true) => MethodType.DuplexStreaming,
        };
        var method = new Method<byte[], byte[]>(type, descriptor.Service.FullName, descriptor.Name, Raw, Raw);
        var invoker = host.Channel.CreateCallInvoker();
        using var cts = new CancellationTokenSource(ServiceTestHost.Timeout);
        var options = AuthTestHost.InNamespace(authorization, ns, cts.Token);
        try
        {
            switch (type)
            {
                case MethodType.Unary:
                    await invoker.AsyncUnaryCall(method, null, options, []).ResponseAsync;
                    break;
                case MethodType.ServerStreaming:
                    {
                        using var call = invoker.AsyncServerStreamingCall(method, null, options, []);
                        while (await call.ResponseStream.MoveNext(cts.Token))
                        {
                        }

                        break;
                    }

                default:
                    {
                        // A stream that ends at once: an authorized caller gets INVALID_ARGUMENT (no hello), others their refusal.
                        using var call = invoker.AsyncDuplexStreamingCall(method, null, options);
                        try
                        {
                            await call.RequestStream.CompleteAsync();
                        }
                        catch (Exception ex) when (ex is RpcException or InvalidOperationException)
                        {
                            // The server ended the call first; its status is read below.
                        }

                        while (await call.ResponseStream.MoveNext(cts.Token))
                        {
                        }

                        break;
                    }
            }

            return Status.DefaultSuccess;
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }
}
