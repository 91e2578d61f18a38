using ControlPlane.Rpc;
using Grpc.Health.V1;
using Google.Protobuf.Reflection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// grpc.health.v1.Health: SERVING while the run store answers and the replica is not shutting down.
/// "" names the whole server; the controlplane.v1 services and grpc.health.v1.Health are known by name.
/// </summary>
internal sealed class HealthServiceImpl
{
    private static readonly HashSet<string> KnownServices = new(StringComparer.Ordinal)
    {
        "",
        "controlplane.v1.RunService",
        "controlplane.v1.AgentService",
        "controlplane.v1.AdminService",
        "grpc.health.v1.Health",
    };

    private readonly IRunStore store;
    private readonly SchedulerOptions options;
    private readonly ILogger logger;
    private readonly CancellationToken shutdown;

    public HealthServiceImpl(IRunStore store, SchedulerOptions options, ILogger logger, CancellationToken shutdown)
    {
        this.store = store;
        this.options = options;
        this.logger = logger;
        this.shutdown = shutdown;
    }

    public ServiceDefinition Definition =>
        ServiceDefinition.For(HealthReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Health"))
            .AddUnary<HealthCheckRequest, HealthCheckResponse>("Check", Check)
            .AddServerStreaming<HealthCheckRequest, HealthCheckResponse>("Watch", Watch)
            .Build();

    public async Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
    {
        if (!KnownServices.Contains(request.Service))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"unknown service '{request.Service}'; ask for \"\" (the whole server) or a controlplane.v1 service name"));
        }

        return new HealthCheckResponse { Status = await ProbeAsync(context.CancellationToken).ConfigureAwait(false) };
    }

    /// <summary>Sends the status, then every change (re-probed each WatchRecheckInterval) until the call ends or the server stops.</summary>
    public async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responses, ServerCallContext context)
    {
        if (!KnownServices.Contains(request.Service))
        {
            await responses.WriteAsync(new HealthCheckResponse { Status = ServingStatus.ServiceUnknown }, context.CancellationToken).ConfigureAwait(false);
            return;
        }

        ServingStatus? last = null;
        while (!context.CancellationToken.IsCancellationRequested)
        {
            var status = await ProbeAsync(context.CancellationToken).ConfigureAwait(false);
            if (status != last)
            {
                await responses.WriteAsync(new HealthCheckResponse { Status = status }, context.CancellationToken).ConfigureAwait(false);
                last = status;
            }

            if (shutdown.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(options.WatchRecheckInterval, shutdown).WaitAsync(context.CancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (shutdown.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
            {
                // Loop once more to send NOT_SERVING before ending.
            }
        }
    }

    private async Task<ServingStatus> ProbeAsync(CancellationToken cancellationToken)
    {
        if (shutdown.IsCancellationRequested)
        {
            return ServingStatus.NotServing;
        }

        try
        {
            // A cheap read that touches the store: an unknown run id is one lookup.
            await store.GetRunAsync("health-probe", cancellationToken).ConfigureAwait(false);
            return ServingStatus.Serving;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            SchedulerLog.StoreCallFailed(logger, "Health", ex);
            return ServingStatus.NotServing;
        }
    }
}
