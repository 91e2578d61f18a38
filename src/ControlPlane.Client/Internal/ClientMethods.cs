using ControlPlane.Rpc;
using ControlPlane.V1;
using Google.Protobuf.Reflection;

namespace ControlPlane.Client.Internal;

/// <summary>The RunService and AdminService methods, bound from the proto descriptors.</summary>
internal static class ClientMethods
{
    private static readonly ServiceDescriptor RunService = RunServiceReflection.Descriptor.FindTypeByName<ServiceDescriptor>("RunService");
    private static readonly ServiceDescriptor AdminService = AdminServiceReflection.Descriptor.FindTypeByName<ServiceDescriptor>("AdminService");

    public static readonly Method<SubmitRunRequest, SubmitRunResponse> SubmitRun = Run<SubmitRunRequest, SubmitRunResponse>("SubmitRun");
    public static readonly Method<GetRunRequest, GetRunResponse> GetRun = Run<GetRunRequest, GetRunResponse>("GetRun");
    public static readonly Method<ListRunsRequest, ListRunsResponse> ListRuns = Run<ListRunsRequest, ListRunsResponse>("ListRuns");
    public static readonly Method<CancelRunRequest, CancelRunResponse> CancelRun = Run<CancelRunRequest, CancelRunResponse>("CancelRun");
    public static readonly Method<PauseRunRequest, PauseRunResponse> PauseRun = Run<PauseRunRequest, PauseRunResponse>("PauseRun");
    public static readonly Method<ResumeRunRequest, ResumeRunResponse> ResumeRun = Run<ResumeRunRequest, ResumeRunResponse>("ResumeRun");
    public static readonly Method<RetryRunRequest, RetryRunResponse> RetryRun = Run<RetryRunRequest, RetryRunResponse>("RetryRun");
    public static readonly Method<ApproveGateRequest, ApproveGateResponse> ApproveGate = Run<ApproveGateRequest, ApproveGateResponse>("ApproveGate");
    public static readonly Method<WatchRunRequest, WatchRunResponse> WatchRun = Run<WatchRunRequest, WatchRunResponse>("WatchRun");
    public static readonly Method<GetStepOutputRequest, GetStepOutputResponse> GetStepOutput = Run<GetStepOutputRequest, GetStepOutputResponse>("GetStepOutput");
    public static readonly Method<ListAgentsRequest, ListAgentsResponse> ListAgents = Admin<ListAgentsRequest, ListAgentsResponse>("ListAgents");
    public static readonly Method<DrainAgentRequest, DrainAgentResponse> DrainAgent = Admin<DrainAgentRequest, DrainAgentResponse>("DrainAgent");
    public static readonly Method<GetStatsRequest, GetStatsResponse> GetStats = Admin<GetStatsRequest, GetStatsResponse>("GetStats");
    public static readonly Method<SetLimitRequest, SetLimitResponse> SetLimit = Admin<SetLimitRequest, SetLimitResponse>("SetLimit");

    private static Method<TReq, TResp> Run<TReq, TResp>(string name)
        where TReq : Google.Protobuf.IMessage<TReq>, new()
        where TResp : Google.Protobuf.IMessage<TResp>, new() =>
        Method<TReq, TResp>.FromDescriptor(RunService.FindMethodByName(name));

    private static Method<TReq, TResp> Admin<TReq, TResp>(string name)
        where TReq : Google.Protobuf.IMessage<TReq>, new()
        where TResp : Google.Protobuf.IMessage<TResp>, new() =>
        Method<TReq, TResp>.FromDescriptor(AdminService.FindMethodByName(name));
}
