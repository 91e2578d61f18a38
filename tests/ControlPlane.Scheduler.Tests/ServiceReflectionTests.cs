using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Server reflection, what grpcurl-style tools use to list and call the services without the protos.</summary>
public sealed class ServiceReflectionTests
{
    [Fact]
    public async Task ListServices_DefaultOptions_ListsEveryControlPlaneServiceAndHealth()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var response = await AskAsync(host, new ServerReflectionRequest { ListServices = "" });

        var names = response.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("controlplane.v1.RunService", names);
        Assert.Contains("controlplane.v1.AgentService", names);
        Assert.Contains("controlplane.v1.AdminService", names);
        Assert.Contains("grpc.health.v1.Health", names);
    }

    [Fact]
    public async Task FileContainingSymbol_RunService_DescribesItsMethods()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var response = await AskAsync(host, new ServerReflectionRequest { FileContainingSymbol = "controlplane.v1.RunService" });

        // The first file is the one declaring the symbol; the rest are its imports.
        var file = FileDescriptorProto.Parser.ParseFrom(response.FileDescriptorResponse.FileDescriptorProto[0]);
        var service = Assert.Single(file.Service, s => s.Name == "RunService");
        Assert.Contains(service.Method, m => m.Name == "SubmitRun" && m.InputType == ".controlplane.v1.SubmitRunRequest");
        Assert.Contains(service.Method, m => m.Name == "WatchRun" && m.ServerStreaming);
    }

    [Fact]
    public async Task ListServices_ReflectionOff_Unimplemented()
    {
        await using var host = await ServiceTestHost.StartAsync(configure: o => o.Reflection = false);

        var ex = await Assert.ThrowsAsync<RpcException>(() => AskAsync(host, new ServerReflectionRequest { ListServices = "" }));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    private static async Task<ServerReflectionResponse> AskAsync(ServiceTestHost host, ServerReflectionRequest request)
    {
        using var cts = new CancellationTokenSource(ServiceTestHost.Timeout);
        using var call = new ServerReflection.ServerReflectionClient(host.Channel).ServerReflectionInfo(cancellationToken: cts.Token);
        await call.RequestStream.WriteAsync(request, cts.Token);
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(cts.Token), "the reflection service sent no response");
        return call.ResponseStream.Current;
    }
}
