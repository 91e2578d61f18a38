using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>AgentService.Connect: registers the agent from its Hello, then serves the stream through an <see cref="AgentConnection"/>.</summary>
internal sealed class AgentServiceImpl : AgentService.AgentServiceBase
{
    private readonly SchedulerRuntime _runtime;
    private readonly SchedulerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationToken _shutdown;
    private readonly OpenStreams _streams;

    public AgentServiceImpl(SchedulerRuntime runtime)
    {
        _runtime = runtime;
        _options = runtime.Options;
        _logger = runtime.Logger;
        _shutdown = runtime.ShuttingDown;
        _streams = runtime.Streams;
    }

    public override async Task Connect(IAsyncStreamReader<ConnectRequest> requests, IServerStreamWriter<ConnectResponse> responses, ServerCallContext context)
    {
        using var open = _streams.Enter();
        if (_shutdown.IsCancellationRequested)
        {
            throw RpcErrors.ShuttingDown("the scheduler is shutting down; connect to another replica or retry");
        }

        if (!await requests.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            throw RpcErrors.InvalidArgument("hello", "the stream ended before hello; the first message of Connect must be hello");
        }

        var first = requests.Current;
        if (first.MessageCase != ConnectRequest.MessageOneofCase.Hello)
        {
            throw RpcErrors.InvalidArgument("hello", $"the first message of Connect must be hello, got {first.MessageCase}; send hello (agent_id, queues, slots) first");
        }

        var registration = ToRegistration(first.Hello);

        // The credential names the agents it may be; nothing is registered for one it does not name.
        AgentCredential.Check(CallerClaims.UserOf(context), registration.AgentId);

        // The agent's namespace is its call's: it registers there and is only ever handed that namespace's steps.
        var ns = await _runtime.ForCallAsync(context, create: true).ConfigureAwait(false);
        var session = await RpcErrors.Guard(() => ns.Store.ConnectAgentAsync(registration, context.CancellationToken), ("agent_id", registration.AgentId)).ConfigureAwait(false);
        var revoked = session.RevokedTokens.ToHashSet();
        var kept = registration.RunningAttempts.Where(a => !revoked.Contains(a.FencingToken));

        using var connection = new AgentConnection(registration, session.SessionId, kept, ns.Store, ns.Pipeline, _options, _logger, context.CancellationToken)
        {
            Secrets = ns.Secrets,
        };
        var welcome = new Welcome
        {
            SchedulerId = _options.EffectiveSchedulerId,
            HeartbeatInterval = Duration.FromTimeSpan(_options.HeartbeatInterval),
            LeaseDuration = Duration.FromTimeSpan(_options.LeaseDuration),

            // AgentConnection unpacks ReportBatch; an agent batches only when a scheduler says it may.
            MaxReportBatch = AgentConnection.MaxReportBatch,

            // Results are acknowledged once stored (ResultsAccepted), heartbeats once their leases are renewed
            // (HeartbeatAccepted); assignments may be declined (StepDeclined).
            AcknowledgesResults = true,
            AcceptsDeclines = true,
            AcknowledgesHeartbeats = true,
        };
        welcome.RevokedFencingTokens.AddRange(session.RevokedTokens);
        connection.Send(new ConnectResponse { Welcome = welcome });

        // A reconnect from the same agent replaces its older stream on this replica.
        ns.Hub.Register(connection)?.Close("the agent opened a newer stream");
        using var onShutdown = _shutdown.Register(() => connection.Close("the scheduler is shutting down", shuttingDown: true));
        SchedulerLog.AgentConnected(_logger, registration.AgentId, ns.Name, context.Peer, registration.Slots, registration.Queues, revoked.Count);
        try
        {
            await connection.RunAsync(requests, responses).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException and not OperationCanceledException)
        {
            SchedulerLog.AgentStreamFailed(_logger, registration.AgentId, ex);
            throw;
        }
        finally
        {
            if (ns.Hub.Unregister(connection))
            {
                try
                {
                    await ns.Store.DisconnectAgentAsync(registration.AgentId, connection.SessionId, CancellationToken.None).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // The agent's leases expire on their own; a failed bookkeeping call changes nothing else.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    SchedulerLog.StoreCallFailed(_logger, "DisconnectAgent", ex);
                }
            }

            SchedulerLog.AgentDisconnected(_logger, registration.AgentId);
        }
    }

    private static AgentRegistration ToRegistration(Hello hello)
    {
        if (string.IsNullOrEmpty(hello.AgentId))
        {
            throw RpcErrors.Required("hello.agent_id");
        }

        if (hello.Slots is < 0 or > AgentRegistration.MaxSlots)
        {
            throw RpcErrors.InvalidArgument("hello.slots", $"hello.slots is {hello.Slots}; send the number of steps the agent runs at once (0 to {AgentRegistration.MaxSlots})");
        }

        if (hello.RunningAttempts.Count > AgentRegistration.MaxSlots)
        {
            throw RpcErrors.InvalidArgument("hello.running_attempts",
                $"hello.running_attempts lists {hello.RunningAttempts.Count} attempts; an agent runs at most {AgentRegistration.MaxSlots} at once");
        }

        RpcErrors.ThrowIfInvalidLabels(hello.Labels, "hello.labels");
        var queues = hello.Queues.Count == 0 ? ["default"] : hello.Queues.ToArray();
        var running = new List<AttemptRef>(hello.RunningAttempts.Count);
        for (var i = 0; i < hello.RunningAttempts.Count; i++)
        {
            var a = hello.RunningAttempts[i];
            if (string.IsNullOrEmpty(a.RunId) || string.IsNullOrEmpty(a.StepId))
            {
                throw RpcErrors.InvalidArgument($"hello.running_attempts[{i}]", $"hello.running_attempts[{i}]: run_id and step_id are required");
            }

            running.Add(new AttemptRef(a.RunId, a.StepId, a.FencingToken));
        }

        return new AgentRegistration(
            hello.AgentId,
            hello.Host,
            hello.Frameworks.ToArray(),
            queues,
            new Dictionary<string, string>(hello.Labels, StringComparer.Ordinal),
            hello.Slots,
            hello.Handlers.ToArray(),
            running);
    }
}
