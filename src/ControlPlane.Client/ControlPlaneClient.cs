using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Internal;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Polly;
using Polly.Retry;

namespace ControlPlane.Client;

/// <summary>
/// Client of a ControlPlane scheduler: submit and follow runs, decide gates, manage agents.
/// Thread-safe; create one per scheduler address and share it. Failures surface as
/// <see cref="RpcException"/> carrying the server's status.
/// </summary>
public sealed class ControlPlaneClient : IDisposable
{
    /// <summary>Methods that change nothing (or set a value): grpc's own retry policy retries them on UNAVAILABLE.</summary>
    private static readonly MethodName[] IdempotentMethods =
    [
        new() { Service = "controlplane.v1.RunService", Method = "GetRun" },
        new() { Service = "controlplane.v1.RunService", Method = "ListRuns" },
        new() { Service = "controlplane.v1.RunService", Method = "GetStepOutput" },
        new() { Service = "controlplane.v1.AdminService", Method = "ListAgents" },
        new() { Service = "controlplane.v1.AdminService", Method = "GetStats" },
        new() { Service = "controlplane.v1.AdminService", Method = "SetLimit" },
        new() { Service = "controlplane.v1.SecretService", Method = "ListSecrets" },
    ];

    private readonly GrpcChannel _channel;
    private readonly RunService.RunServiceClient _runs;
    private readonly AdminService.AdminServiceClient _admin;
    private readonly AuthService.AuthServiceClient _auth;
    private readonly AuditService.AuditServiceClient _audit;
    private readonly SecretService.SecretServiceClient _secrets;
    private readonly Internal.AuthOffObserver _authOff = new();
    private readonly ControlPlaneClientOptions _options;
    private readonly Metadata? _headers;

    // Polly where grpc's retry policy does not fit: SubmitRun is idempotent only with a key, and a watch that already
    // delivered events is reopened from its last seq rather than replayed.
    private readonly ResiliencePipeline _retry;

    public ControlPlaneClient(ControlPlaneClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Address = new Uri(options.Address);
        _channel = GrpcChannel.ForAddress(options.Address, CreateChannelOptions(options, _authOff));
        _runs = new RunService.RunServiceClient(_channel);
        _admin = new AdminService.AdminServiceClient(_channel);
        _auth = new AuthService.AuthServiceClient(_channel);
        _audit = new AuditService.AuditServiceClient(_channel);
        _secrets = new SecretService.SecretServiceClient(_channel);
        if (options.BearerToken is not null || options.Namespace is not null)
        {
            _headers = new Metadata();
            if (options.BearerToken is { } token)
            {
                _headers.Add("authorization", "Bearer " + token);
            }

            if (options.Namespace is { } ns)
            {
                _headers.Add("cp-namespace", ns);
            }
        }

        _retry = options.MaxRetryAttempts == 0
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider }
                .AddRetry(new RetryStrategyOptions
                {
                    ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode == StatusCode.Unavailable),
                    MaxRetryAttempts = options.MaxRetryAttempts,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = options.RetryBaseDelay,
                    MaxDelay = options.RetryMaxDelay,
                })
                .Build();
    }

    /// <summary>
    /// The channel: HTTP/2 keep-alive pings (a dead scheduler is noticed on an idle watch), several HTTP/2
    /// connections when one is full, and grpc's retry policy for the idempotent methods.
    /// </summary>
    internal static GrpcChannelOptions CreateChannelOptions(ControlPlaneClientOptions options) => CreateChannelOptions(options, null);

    private static GrpcChannelOptions CreateChannelOptions(ControlPlaneClientOptions options, Internal.AuthOffObserver? authOff)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (options.ServerCertificateValidation is { } validation)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = validation;
        }

        var (ca, clientCertificate) = LoadTls(options);
        ClientTls.Apply(handler.SslOptions, ca, clientCertificate);

        HttpMessageHandler outer = handler;
        if (authOff is not null)
        {
            authOff.InnerHandler = handler;
            outer = authOff;
        }

        var channelOptions = new GrpcChannelOptions
        {
            HttpHandler = outer,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = options.MaxReceiveMessageSize,
        };
        if (options.MaxRetryAttempts > 0)
        {
            var policy = new Grpc.Net.Client.Configuration.RetryPolicy
            {
                MaxAttempts = options.MaxRetryAttempts + 1,
                InitialBackoff = options.RetryBaseDelay,
                MaxBackoff = options.RetryMaxDelay,
                BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable },
            };
            var config = new MethodConfig { RetryPolicy = policy };
            foreach (var name in IdempotentMethods)
            {
                config.Names.Add(name);
            }

            channelOptions.ServiceConfig = new ServiceConfig { MethodConfigs = { config } };
            channelOptions.MaxRetryAttempts = policy.MaxAttempts;
        }

        options.ConfigureChannel?.Invoke(channelOptions);
        return channelOptions;
    }

    /// <summary>The private CA and the client certificate the options name (each null when not set); ArgumentException when a file is unusable.</summary>
    internal static (X509Certificate2Collection? Ca, X509Certificate2? ClientCertificate) LoadTls(ControlPlaneClientOptions options) =>
        (options.CaFile is null ? null : ClientTls.LoadCa(options.CaFile, nameof(ControlPlaneClientOptions.CaFile)),
         ClientTls.LoadClientCertificate(options.ClientCertificateFile, options.ClientKeyFile, nameof(ControlPlaneClientOptions.ClientCertificateFile), nameof(ControlPlaneClientOptions.ClientKeyFile)));

    /// <summary>
    /// Why a call that failed with UNAVAILABLE before reaching the scheduler could not connect, when TLS is the reason
    /// (plain text against a TLS listener, an untrusted or misnamed certificate, a refused client certificate), in one
    /// sentence that says which option to change; null when TLS is not the problem.
    /// </summary>
    public Task<string?> DiagnoseConnectionAsync(RpcException failure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(failure);
        // grpc reports a failed connection as UNAVAILABLE, or INTERNAL when the TLS handshake failed.
        if (failure.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal) || failure.Status.DebugException is not HttpRequestException)
        {
            return Task.FromResult<string?>(null);
        }

        var (ca, clientCertificate) = LoadTls(_options);
        return ClientTls.DiagnoseAsync(Address, ca, clientCertificate, cancellationToken);
    }

    /// <summary>
    /// True once a response said the scheduler runs with authentication off (its <c>cp-auth: off</c> header): every
    /// caller may do everything there, and a token is not checked.
    /// </summary>
    public bool SchedulerAuthenticationOff => _authOff.Seen;

    /// <summary>Creates a bearer token (AuthService, admin role); the response holds the secret, returned this once.</summary>
    public Task<CreateTokenResponse> CreateTokenAsync(CreateTokenRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return UnaryAsync(o => _auth.CreateTokenAsync(request, o), cancellationToken);
    }

    /// <summary>Every token, without secrets (AuthService, admin role).</summary>
    public async Task<IReadOnlyList<TokenInfo>> ListTokensAsync(CancellationToken cancellationToken = default) =>
        (await UnaryAsync(o => _auth.ListTokensAsync(new ListTokensRequest(), o), cancellationToken).ConfigureAwait(false)).Tokens;

    /// <summary>Revokes the token <paramref name="name"/> (in <paramref name="ns"/>, or wherever the name is unique).</summary>
    public async Task<TokenInfo> RevokeTokenAsync(string name, string? ns = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return (await UnaryAsync(o => _auth.RevokeTokenAsync(new RevokeTokenRequest { Name = name, Namespace = ns ?? "" }, o), cancellationToken).ConfigureAwait(false)).Info;
    }

    /// <summary>A page of the audit trail, newest first (AuditService, admin role).</summary>
    public Task<ListAuditResponse> ListAuditAsync(ListAuditRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return UnaryAsync(o => _audit.ListAuditAsync(request, o), cancellationToken);
    }

    /// <summary>
    /// Creates or replaces the secret <paramref name="name"/> (SecretService, admin role); steps on
    /// <paramref name="queues"/> (every queue when empty) may name it. The value is never returned by any call.
    /// </summary>
    public Task<SetSecretResponse> SetSecretAsync(string name, ReadOnlyMemory<byte> value, IEnumerable<string>? queues = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var request = new SetSecretRequest { Name = name, Value = Google.Protobuf.ByteString.CopyFrom(value.Span) };
        request.Queues.AddRange(queues ?? []);
        return UnaryAsync(o => _secrets.SetSecretAsync(request, o), cancellationToken);
    }

    /// <summary>Every secret's name, queues and dates, without values (SecretService, admin role).</summary>
    public async Task<IReadOnlyList<SecretInfo>> ListSecretsAsync(CancellationToken cancellationToken = default) =>
        (await UnaryAsync(o => _secrets.ListSecretsAsync(new ListSecretsRequest(), o), cancellationToken).ConfigureAwait(false)).Secrets;

    /// <summary>Deletes the secret <paramref name="name"/> (SecretService, admin role).</summary>
    public async Task<SecretInfo> DeleteSecretAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return (await UnaryAsync(o => _secrets.DeleteSecretAsync(new DeleteSecretRequest { Name = name }, o), cancellationToken).ConfigureAwait(false)).Info;
    }

    /// <summary>Creates a client of the scheduler at <paramref name="address"/> with default options.</summary>
    public ControlPlaneClient(string address)
        : this(new ControlPlaneClientOptions { Address = address })
    {
    }

    /// <summary>The scheduler's address.</summary>
    public Uri Address { get; }

    /// <summary>
    /// Validates and starts a run. With an idempotency key the call is retried on UNAVAILABLE, and submitting
    /// the same key again returns the run it first created (<see cref="SubmitRunResponse.Created"/> false).
    /// </summary>
    public Task<SubmitRunResponse> SubmitRunAsync(RunSpec spec, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var request = new SubmitRunRequest { Spec = spec, IdempotencyKey = idempotencyKey ?? string.Empty };
        var call = (Func<CallOptions, AsyncUnaryCall<SubmitRunResponse>>)(o => _runs.SubmitRunAsync(request, o));
        return string.IsNullOrEmpty(idempotencyKey) ? UnaryAsync(call, cancellationToken) : RetriedAsync(call, cancellationToken);
    }

    /// <summary>The run with its steps and history; NOT_FOUND when there is none.</summary>
    public async Task<Run> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        var response = await UnaryAsync(o => _runs.GetRunAsync(new GetRunRequest { RunId = runId }, o), cancellationToken).ConfigureAwait(false);
        return response.Run;
    }

    /// <summary>One page of runs, newest first, filtered by the request's state and labels.</summary>
    public Task<ListRunsResponse> ListRunsAsync(ListRunsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return UnaryAsync(o => _runs.ListRunsAsync(request, o), cancellationToken);
    }

    /// <summary>Cancels the run: running attempts are told to stop and nothing new is dispatched.</summary>
    public async Task<Run> CancelRunAsync(string runId, string? reason = null, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        var request = new CancelRunRequest { RunId = runId, Reason = reason ?? string.Empty };
        return (await UnaryAsync(o => _runs.CancelRunAsync(request, o), cancellationToken).ConfigureAwait(false)).Run;
    }

    /// <summary>Dispatches nothing new until <see cref="ResumeRunAsync"/>; running steps finish.</summary>
    public async Task<Run> PauseRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        return (await UnaryAsync(o => _runs.PauseRunAsync(new PauseRunRequest { RunId = runId }, o), cancellationToken).ConfigureAwait(false)).Run;
    }

    /// <summary>Resumes a paused run.</summary>
    public async Task<Run> ResumeRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        return (await UnaryAsync(o => _runs.ResumeRunAsync(new ResumeRunRequest { RunId = runId }, o), cancellationToken).ConfigureAwait(false)).Run;
    }

    /// <summary>Re-runs the failed, cancelled and skipped steps of a finished run, keeping succeeded outputs.</summary>
    public async Task<Run> RetryRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        return (await UnaryAsync(o => _runs.RetryRunAsync(new RetryRunRequest { RunId = runId }, o), cancellationToken).ConfigureAwait(false)).Run;
    }

    /// <summary>Approves (or rejects) a gate step waiting for approval.</summary>
    public async Task<Run> ApproveGateAsync(string runId, string stepId, bool approve = true, string? decidedBy = null, string? comment = null, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        RequireId(stepId, nameof(stepId));
        var request = new ApproveGateRequest
        {
            RunId = runId,
            StepId = stepId,
            Decision = approve ? GateDecision.Approve : GateDecision.Reject,
            DecidedBy = decidedBy ?? string.Empty,
            Comment = comment ?? string.Empty,
        };
        return (await UnaryAsync(o => _runs.ApproveGateAsync(request, o), cancellationToken).ConfigureAwait(false)).Run;
    }

    /// <summary>A step's output: inline bytes or a URI.</summary>
    public async Task<StepOutput> GetStepOutputAsync(string runId, string stepId, CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        RequireId(stepId, nameof(stepId));
        var request = new GetStepOutputRequest { RunId = runId, StepId = stepId };
        return (await UnaryAsync(o => _runs.GetStepOutputAsync(request, o), cancellationToken).ConfigureAwait(false)).Output;
    }

    /// <summary>The agents the scheduler knows.</summary>
    public async Task<IReadOnlyList<Agent>> ListAgentsAsync(CancellationToken cancellationToken = default)
    {
        var response = await UnaryAsync(o => _admin.ListAgentsAsync(new ListAgentsRequest(), o), cancellationToken).ConfigureAwait(false);
        return response.Agents;
    }

    /// <summary>Tells an agent to finish what it runs and take nothing new.</summary>
    public async Task<Agent> DrainAgentAsync(string agentId, CancellationToken cancellationToken = default)
    {
        RequireId(agentId, nameof(agentId));
        var request = new DrainAgentRequest { AgentId = agentId };
        return (await UnaryAsync(o => _admin.DrainAgentAsync(request, o), cancellationToken).ConfigureAwait(false)).Agent;
    }

    /// <summary>Ready/running counts per queue and every slot counter with its cap.</summary>
    public Task<GetStatsResponse> GetStatsAsync(CancellationToken cancellationToken = default) =>
        UnaryAsync(o => _admin.GetStatsAsync(new GetStatsRequest(), o), cancellationToken);

    /// <summary>Sets (or, with 0, removes) a queue cap or a concurrency-key cap shared across all runs.</summary>
    public async Task SetLimitAsync(LimitKind kind, string name, int limit, CancellationToken cancellationToken = default)
    {
        RequireId(name, nameof(name));
        var request = new SetLimitRequest { Kind = kind, Name = name, Limit = limit };
        await UnaryAsync(o => _admin.SetLimitAsync(request, o), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The run's events with seq greater than <paramref name="afterSeq"/>: the log replayed, then new events as
    /// they happen. A cut-off stream is reopened from the last seq yielded, so each event comes exactly once and
    /// in order. Ends when the run is terminal and its last event was yielded.
    /// </summary>
    public async IAsyncEnumerable<RunEvent> WatchRunAsync(string runId, long afterSeq = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        RequireId(runId, nameof(runId));
        ArgumentOutOfRangeException.ThrowIfNegative(afterSeq);
        var last = afterSeq;
        var terminal = false;
        var idleEnds = 0;
        while (true)
        {
            // Opening, up to the first message, goes through the retry pipeline: a scheduler that is down is
            // retried with backoff, and a stream that yields something has made progress.
            var lastAtOpen = last;
            var (call, hasMessage) = await _retry.ExecuteAsync(
                static async (state, token) =>
                {
                    var (client, request) = state;
                    var opened = client._runs.WatchRun(request, new CallOptions(client._headers, null, token));
                    try
                    {
                        return (opened, await opened.ResponseStream.MoveNext(token).ConfigureAwait(false));
                    }
                    catch
                    {
                        opened.Dispose();
                        throw;
                    }
                },
                (this, new WatchRunRequest { RunId = runId, AfterSeq = last }),
                cancellationToken).ConfigureAwait(false);

            var cutOff = false;
            using (call)
            {
                while (hasMessage)
                {
                    var runEvent = call.ResponseStream.Current.Event;
                    if (runEvent is not null && runEvent.Seq > last)
                    {
                        last = runEvent.Seq;
                        terminal = IsTerminal(runEvent);
                        yield return runEvent;
                    }

                    try
                    {
                        hasMessage = await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false);
                    }
                    catch (RpcException ex) when (IsCutOff(ex, cancellationToken))
                    {
                        cutOff = true;
                        break;
                    }
                }
            }

            if (!cutOff)
            {
                if (terminal)
                {
                    yield break;
                }

                // The server ended the stream without the run's final event (e.g. a replica shutting down):
                // finish only when the run really is over and nothing is left to replay.
                var run = await GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
                if (IsTerminal(run.State) && run.LastEventSeq <= last)
                {
                    yield break;
                }
            }

            if (last > lastAtOpen)
            {
                idleEnds = 0;
                continue;
            }

            // A stream that ends again and again without delivering anything must not spin forever.
            if (++idleEnds > _options.MaxRetryAttempts)
            {
                throw new RpcException(new Status(
                    StatusCode.Unavailable,
                    $"The watch of run {runId} ended {idleEnds} times in a row without delivering an event; the scheduler at {Address} keeps closing the stream."));
            }

            await Task.Delay(_options.RetryBaseDelay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// RunService.WatchRuns until cancelled: the snapshot of matching runs (or the changes after
    /// <see cref="WatchRunsRequest.AfterCursor"/>), a caught_up message, then every change. A stream cut off (the
    /// scheduler restarting, a replica shutting down) is reopened after the last cursor received, so no change is
    /// missed; when the scheduler no longer keeps changes that old it sends reset and a new snapshot.
    /// </summary>
    public async IAsyncEnumerable<WatchRunsResponse> WatchRunsAsync(WatchRunsRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var next = request.Clone();
        var idleEnds = 0;
        while (true)
        {
            var (call, hasMessage) = await _retry.ExecuteAsync(
                static async (state, token) =>
                {
                    var (client, watch) = state;
                    var opened = client._runs.WatchRuns(watch, new CallOptions(client._headers, null, token));
                    try
                    {
                        return (opened, await opened.ResponseStream.MoveNext(token).ConfigureAwait(false));
                    }
                    catch
                    {
                        opened.Dispose();
                        throw;
                    }
                },
                (this, next.Clone()),
                cancellationToken).ConfigureAwait(false);

            var delivered = false;
            using (call)
            {
                while (hasMessage)
                {
                    var message = call.ResponseStream.Current;
                    if (message.Cursor.Length > 0)
                    {
                        next.AfterCursor = message.Cursor;
                    }

                    delivered = true;
                    yield return message;
                    try
                    {
                        hasMessage = await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false);
                    }
                    catch (RpcException ex) when (IsCutOff(ex, cancellationToken))
                    {
                        break;
                    }
                }
            }

            // A stream that ends again and again without delivering anything must not spin forever.
            idleEnds = delivered ? 0 : idleEnds + 1;
            if (idleEnds > _options.MaxRetryAttempts)
            {
                throw new RpcException(new Status(
                    StatusCode.Unavailable,
                    $"The watch of runs ended {idleEnds} times in a row without delivering anything; the scheduler at {Address} keeps closing the stream."));
            }

            await Task.Delay(_options.RetryBaseDelay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes the connection to the scheduler; calls still running fail.</summary>
    public void Dispose() => _channel.Dispose();

    /// <summary>True for a run state no run leaves by itself.</summary>
    public static bool IsTerminal(RunState state) => state is RunState.Succeeded or RunState.Failed or RunState.Cancelled;

    private static bool IsTerminal(RunEvent runEvent) =>
        runEvent.EventCase == RunEvent.EventOneofCase.RunStateChanged && IsTerminal(runEvent.RunStateChanged.ToState);

    // A stream the transport or the server cut off (not one the caller cancelled) is worth reopening.
    private static bool IsCutOff(RpcException ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Cancelled;

    /// <summary>One unary call under the default deadline; the channel's retry policy covers the idempotent methods.</summary>
    private async Task<TResponse> UnaryAsync<TResponse>(Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken)
    {
        DateTime? deadline = _options.DefaultDeadline is { } timeout ? DateTime.UtcNow + timeout : null;
        using var pending = call(new CallOptions(_headers, deadline, cancellationToken));
        return await pending.ResponseAsync.ConfigureAwait(false);
    }

    /// <summary>A call made idempotent by its request (SubmitRun with a key), retried on UNAVAILABLE under one deadline.</summary>
    private async Task<TResponse> RetriedAsync<TResponse>(Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken)
    {
        // One deadline for the whole call, retries included, as gRPC deadlines are meant.
        DateTime? deadline = _options.DefaultDeadline is { } timeout ? DateTime.UtcNow + timeout : null;
        return await _retry.ExecuteAsync(
            static async (state, token) =>
            {
                var (client, call, deadline) = state;
                using var pending = call(new CallOptions(client._headers, deadline, token));
                return await pending.ResponseAsync.ConfigureAwait(false);
            },
            (this, call, deadline),
            cancellationToken).ConfigureAwait(false);
    }

    private static void RequireId(string value, string name)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new ArgumentException($"{name} is empty; pass the id shown by 'cpctl run ls' or returned by SubmitRunAsync.", name);
        }
    }
}
