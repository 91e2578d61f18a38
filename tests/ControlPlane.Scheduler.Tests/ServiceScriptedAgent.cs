using System.Threading.Channels;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// An agent driven by the test over a real Connect stream: every message the scheduler sends is queued for the
/// test to take with <see cref="NextAsync"/>; the test writes the agent's side with <see cref="SendAsync"/>.
/// </summary>
public sealed class ServiceScriptedAgent : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<ConnectRequest, ConnectResponse> call;
    private readonly Channel<ConnectResponse> received = System.Threading.Channels.Channel.CreateUnbounded<ConnectResponse>();
    private readonly CancellationTokenSource cts = new();
    private readonly Task reader;

    private ServiceScriptedAgent(AsyncDuplexStreamingCall<ConnectRequest, ConnectResponse> call)
    {
        this.call = call;
        reader = Task.Run(ReadAsync);
    }

    /// <summary>The status the stream ended with, once it ended.</summary>
    public Task<Status> Ended => ended.Task;

    private readonly TaskCompletionSource<Status> ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<ServiceScriptedAgent> ConnectAsync(GrpcChannel channel, Hello hello)
    {
        var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(ServiceTestHost.Methods.Connect, null, default);
        var agent = new ServiceScriptedAgent(call);
        await agent.SendAsync(new ConnectRequest { Hello = hello });
        return agent;
    }

    public static Hello Hello(string id, int slots = 4, params string[] queues)
    {
        var hello = new Hello { AgentId = id, Host = "test", Slots = slots };
        hello.Frameworks.Add("shell");
        hello.Frameworks.Add("dotnet");
        hello.Queues.Add(queues);
        return hello;
    }

    public Task SendAsync(ConnectRequest message) => call.RequestStream.WriteAsync(message);

    public Task CompleteAsync() => call.RequestStream.CompleteAsync();

    /// <summary>The next message from the scheduler; fails the test when none arrives in time.</summary>
    public async Task<ConnectResponse> NextAsync()
    {
        using var timeout = new CancellationTokenSource(ServiceTestHost.Timeout);
        try
        {
            return await received.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException("the scheduler sent nothing within " + ServiceTestHost.Timeout);
        }
        catch (ChannelClosedException)
        {
            throw new Xunit.Sdk.XunitException($"the stream ended ({await Ended}) while a message was expected");
        }
    }

    /// <summary>The next message of the given kind, skipping others (returned in <paramref name="skipped"/>).</summary>
    public async Task<ConnectResponse> NextAsync(ConnectResponse.MessageOneofCase kind, List<ConnectResponse>? skipped = null)
    {
        while (true)
        {
            var message = await NextAsync();
            if (message.MessageCase == kind)
            {
                return message;
            }

            skipped?.Add(message);
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            while (await call.ResponseStream.MoveNext(cts.Token))
            {
                received.Writer.TryWrite(call.ResponseStream.Current);
            }

            ended.TrySetResult(call.GetStatus());
        }
        catch (RpcException ex)
        {
            ended.TrySetResult(ex.Status);
        }
        catch (OperationCanceledException)
        {
            ended.TrySetResult(Status.DefaultCancelled);
        }
        finally
        {
            received.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await cts.CancelAsync();
        call.Dispose();
        await reader;
        cts.Dispose();
    }
}
