using System.Globalization;
using ControlPlane.Scheduler.Audit;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Scheduler.Services;

/// <summary>AdminService: the fleet, drains, queue and slot statistics, shared caps.</summary>
internal sealed class AdminServiceImpl : AdminService.AdminServiceBase
{
    private readonly SchedulerRuntime _runtime;

    public AdminServiceImpl(SchedulerRuntime runtime)
    {
        _runtime = runtime;
    }

    public override async Task<ListAgentsResponse> ListAgents(ListAgentsRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var agents = await RpcErrors.Guard(() => ns.Store.ListAgentsAsync(context.CancellationToken)).ConfigureAwait(false);
        var response = new ListAgentsResponse();
        response.Agents.AddRange(agents);
        return response;
    }

    public override async Task<DrainAgentResponse> DrainAgent(DrainAgentRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        if (string.IsNullOrEmpty(request.AgentId))
        {
            throw RpcErrors.Required("agent_id");
        }

        var agent = await RpcErrors.Guard(() => ns.Store.DrainAgentAsync(request.AgentId, context.CancellationToken), ("agent_id", request.AgentId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, AuditActions.AgentDrain, request.AgentId).ConfigureAwait(false);
        return new DrainAgentResponse { Agent = agent };
    }

    public override async Task<GetStatsResponse> GetStats(GetStatsRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var stats = await RpcErrors.Guard(() => ns.Store.GetStatsAsync(context.CancellationToken)).ConfigureAwait(false);
        var response = new GetStatsResponse();
        foreach (var queue in stats.Queues)
        {
            // Measured by this replica over the last five minutes (the proto says so); other replicas measure their own.
            var stat = queue.Clone();
            if (_runtime.Metrics?.DispatchLatency(ns.Name, queue.Queue) is var (p50, p95))
            {
                stat.DispatchLatencyP50 = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(p50);
                stat.DispatchLatencyP95 = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(p95);
            }

            response.Queues.Add(stat);
        }

        response.Slots.AddRange(stats.Slots.Select(s => new SlotCounter { Kind = s.Kind, Name = s.Name, Used = s.Used, Limit = s.Limit }));
        return response;
    }

    public override async Task<SetLimitResponse> SetLimit(SetLimitRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context, create: true).ConfigureAwait(false);
        if (request.Kind is not (LimitKind.Queue or LimitKind.ConcurrencyKey))
        {
            throw RpcErrors.InvalidArgument("kind", "kind is required: LIMIT_KIND_QUEUE or LIMIT_KIND_CONCURRENCY_KEY");
        }

        if (string.IsNullOrEmpty(request.Name))
        {
            throw RpcErrors.Required("name");
        }

        if (request.Limit < 0)
        {
            throw RpcErrors.InvalidArgument("limit", $"limit is {request.Limit}; use 0 to remove the cap or a positive number of steps");
        }

        await RpcErrors.Guard(async () =>
        {
            await ns.Store.SetLimitAsync(request.Kind, request.Name, request.Limit, context.CancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
        var kind = request.Kind == LimitKind.Queue ? "queue" : "concurrency_key";
        await ns.Audit.RecordAsync(context, AuditActions.LimitSet, $"{kind}:{request.Name}", "limit=" + request.Limit.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        return new SetLimitResponse();
    }
}
