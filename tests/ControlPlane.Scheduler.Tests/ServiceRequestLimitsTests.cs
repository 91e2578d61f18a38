using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;
using Xunit;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

/// <summary>What one request may carry: its size per RPC, and its labels.</summary>
public sealed class ServiceRequestLimitsTests
{
    [Fact]
    public async Task SubmitRun_FiveMiB_ResourceExhaustedNamingTheLimitAndTheSetting()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.SubmitRun, new SubmitRunRequest { Spec = SpecOfSize(5 << 20) }));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("SubmitRun", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("4,194,304", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("--max-submit-size", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitRun_ThreeMiB_Accepted()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var response = await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = SpecOfSize(3 << 20) });

        Assert.True(response.Created);
    }

    [Fact]
    public async Task SubmitRun_OverAConfiguredLimit_ResourceExhausted()
    {
        await using var host = await ServiceTestHost.StartAsync(configure: o => o.MaxSubmitSize = 1 << 20);

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.SubmitRun, new SubmitRunRequest { Spec = SpecOfSize(2 << 20) }));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("1,048,576", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRun_RequestOverTheSmallCap_ResourceExhausted()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.GetRun, new GetRunRequest { RunId = new string('r', 100_000) }));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("GetRun", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("65,536", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DrainAgent_RequestOverTheSmallCap_ResourceExhausted()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.DrainAgent, new DrainAgentRequest { AgentId = new string('a', 100_000) }));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task Connect_HelloLargerThanTheSmallCap_StillWelcomed()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var hello = ServiceScriptedAgent.Hello("big-hello");
        hello.Host = new string('h', 100_000);
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);

        var welcome = await agent.NextAsync();

        Assert.Equal(ConnectResponse.MessageOneofCase.Welcome, welcome.MessageCase);
    }

    [Fact]
    public async Task ListRuns_TooManyLabels_InvalidArgumentOnLabels()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var request = new ListRunsRequest();
        for (var i = 0; i < 65; i++)
        {
            request.Labels[$"k{i}"] = "v";
        }

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.ListRuns, request));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("labels", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task ListRuns_LongLabelKeyAndValue_InvalidArgumentWithTheFieldPaths()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var request = new ListRunsRequest();
        request.Labels[new string('k', 64)] = "v";
        request.Labels["team"] = new string('v', 257);

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.ListRuns, request));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var fields = ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations.Select(f => f.Field).ToList();
        Assert.Equal([$"labels[{new string('k', 64)}]", "labels[team]"], fields);
    }

    [Fact]
    public async Task SubmitRun_LongLabelValue_InvalidArgumentWithTheFieldPath()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var spec = ServiceRunServiceTests.Spec("labelled", ServiceRunServiceTests.Shell("a"));
        spec.Labels["team"] = new string('v', 257);

        var ex = await Assert.ThrowsAsync<RpcException>(() => host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("labels[team]", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task Connect_HelloWithTooManyLabels_InvalidArgumentOnHelloLabels()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var hello = ServiceScriptedAgent.Hello("labelled");
        for (var i = 0; i < 65; i++)
        {
            hello.Labels[$"k{i}"] = "v";
        }

        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.StartsWith("hello.labels", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_HelloWithABadLabelKey_InvalidArgumentNamingTheLabel()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var hello = ServiceScriptedAgent.Hello("labelled");
        hello.Labels["bad key"] = "v";

        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.StartsWith("hello.labels[bad key]", status.Detail, StringComparison.Ordinal);
    }

    /// <summary>A valid spec of about <paramref name="bytes"/> bytes serialized: steps with long commands.</summary>
    private static RunSpec SpecOfSize(int bytes)
    {
        var spec = new RunSpec { Name = "large" };
        var command = "echo " + new string('x', 995);
        for (var i = 0; spec.CalculateSize() < bytes; i++)
        {
            for (var j = 0; j < 256; j++)
            {
                spec.Steps.Add(new StepSpec { Id = $"s{i}-{j}", Framework = "shell", Command = command });
            }
        }

        return spec;
    }
}
