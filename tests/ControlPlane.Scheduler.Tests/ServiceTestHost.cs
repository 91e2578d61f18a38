using ControlPlane.Scheduler;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace ControlPlane.Scheduler.Tests;

/// <summary>A real SchedulerServer on a free loopback port over an embedded store, with a channel to it.</summary>
public sealed class ServiceTestHost : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly bool _ownsStore;

    private ServiceTestHost(SchedulerOptions options, SchedulerServer server, EmbeddedRunStore store, GrpcChannel channel, bool ownsStore = true)
    {
        Options = options;
        Server = server;
        Store = store;
        Channel = channel;
        _ownsStore = ownsStore;
    }

    /// <summary>The options the scheduler was started with.</summary>
    public SchedulerOptions Options { get; }

    public SchedulerServer Server { get; }

    public EmbeddedRunStore Store { get; }

    public GrpcChannel Channel { get; }

    /// <param name="wrapStore">Puts a stand-in (e.g. one that fails on cue) between the scheduler and its embedded store.</param>
    public static async Task<ServiceTestHost> StartAsync(TimeProvider? time = null, Action<SchedulerOptions>? configure = null, Func<IRunStore, IRunStore>? wrapStore = null)
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", HeartbeatInterval = TimeSpan.FromSeconds(1), LeaseDuration = TimeSpan.FromSeconds(10) };
        configure?.Invoke(options);
        var store = new EmbeddedRunStore(options.CreateStoreOptions(), time);
        var server = new SchedulerServer(options, wrapStore?.Invoke(store) ?? store, timeProvider: time);
        await server.StartAsync();
        var channel = GrpcChannel.ForAddress(server.Addresses[0].ToString(), new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 });
        return new ServiceTestHost(options, server, store, channel);
    }

    /// <summary>A second scheduler replica on this host's store, as two replicas share one Redis; disposing it leaves the store open.</summary>
    public async Task<ServiceTestHost> StartReplicaAsync()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", HeartbeatInterval = Options.HeartbeatInterval, LeaseDuration = Options.LeaseDuration };
        var server = new SchedulerServer(options, Store);
        await server.StartAsync();
        var channel = GrpcChannel.ForAddress(server.Addresses[0].ToString(), new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 });
        return new ServiceTestHost(options, server, Store, channel, ownsStore: false);
    }

    public Task<TResp> Call<TReq, TResp>(Method<TReq, TResp> method, TReq request)
        where TReq : class
        where TResp : class =>
        Channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow + Timeout), request).ResponseAsync;

    public async Task<Run> WaitForRunAsync(string runId, Func<Run, bool> condition)
    {
        // Wakes on every event of the run; the deadline fails the test when the condition never holds.
        using var cts = new CancellationTokenSource(Timeout);
        var run = (await Call(Methods.GetRun, new GetRunRequest { RunId = runId })).Run;
        if (condition(run))
        {
            return run;
        }

        using var watch = Channel.CreateCallInvoker().AsyncServerStreamingCall(
            Methods.WatchRun, null, new CallOptions(cancellationToken: cts.Token), new WatchRunRequest { RunId = runId, AfterSeq = run.LastEventSeq });
        while (await watch.ResponseStream.MoveNext(cts.Token))
        {
            run = (await Call(Methods.GetRun, new GetRunRequest { RunId = runId })).Run;
            if (condition(run))
            {
                return run;
            }
        }

        run = (await Call(Methods.GetRun, new GetRunRequest { RunId = runId })).Run;
        return condition(run) ? run : throw new Xunit.Sdk.XunitException($"run {runId} ended as {run.State} without meeting the condition");
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
        if (_ownsStore)
        {
            await Store.DisposeAsync();
        }
    }

    /// <summary>The methods of the scheduler's services, for calls through the channel's call invoker.</summary>
    public static class Methods
    {
        private const string Runs = "controlplane.v1.RunService";
        private const string Agents = "controlplane.v1.AgentService";
        private const string Admin = "controlplane.v1.AdminService";
        private const string Health = "grpc.health.v1.Health";

        public static readonly Method<SubmitRunRequest, SubmitRunResponse> SubmitRun = Of<SubmitRunRequest, SubmitRunResponse>(Runs, "SubmitRun");
        public static readonly Method<GetRunRequest, GetRunResponse> GetRun = Of<GetRunRequest, GetRunResponse>(Runs, "GetRun");
        public static readonly Method<ListRunsRequest, ListRunsResponse> ListRuns = Of<ListRunsRequest, ListRunsResponse>(Runs, "ListRuns");
        public static readonly Method<CancelRunRequest, CancelRunResponse> CancelRun = Of<CancelRunRequest, CancelRunResponse>(Runs, "CancelRun");
        public static readonly Method<ApproveGateRequest, ApproveGateResponse> ApproveGate = Of<ApproveGateRequest, ApproveGateResponse>(Runs, "ApproveGate");
        public static readonly Method<WatchRunRequest, WatchRunResponse> WatchRun = Of<WatchRunRequest, WatchRunResponse>(Runs, "WatchRun", MethodType.ServerStreaming);
        public static readonly Method<GetStepOutputRequest, GetStepOutputResponse> GetStepOutput = Of<GetStepOutputRequest, GetStepOutputResponse>(Runs, "GetStepOutput");
        public static readonly Method<ConnectRequest, ConnectResponse> Connect = Of<ConnectRequest, ConnectResponse>(Agents, "Connect", MethodType.DuplexStreaming);
        public static readonly Method<GetStatsRequest, GetStatsResponse> GetStats = Of<GetStatsRequest, GetStatsResponse>(Admin, "GetStats");
        public static readonly Method<ListAgentsRequest, ListAgentsResponse> ListAgents = Of<ListAgentsRequest, ListAgentsResponse>(Admin, "ListAgents");
        public static readonly Method<DrainAgentRequest, DrainAgentResponse> DrainAgent = Of<DrainAgentRequest, DrainAgentResponse>(Admin, "DrainAgent");
        public static readonly Method<SetLimitRequest, SetLimitResponse> SetLimit = Of<SetLimitRequest, SetLimitResponse>(Admin, "SetLimit");
        public static readonly Method<HealthCheckRequest, HealthCheckResponse> HealthCheck = Of<HealthCheckRequest, HealthCheckResponse>(Health, "Check");

        private static Method<TReq, TResp> Of<TReq, TResp>(string service, string name, MethodType type = MethodType.Unary)
            where TReq : class, IMessage<TReq>, new()
            where TResp : class, IMessage<TResp>, new() =>
            new(type, service, name, Marshaller<TReq>(), Marshaller<TResp>());

        private static Marshaller<T> Marshaller<T>()
            where T : IMessage<T>, new()
        {
            var parser = new MessageParser<T>(() => new T());
            return Marshallers.Create(m => m.ToByteArray(), parser.ParseFrom);
        }
    }
}
