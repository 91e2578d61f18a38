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
    private readonly AsyncDuplexStreamingCall<ConnectRequest, ConnectResponse> _call;
    private readonly Channel<ConnectResponse> _received = System.Threading.Channels.Channel.CreateUnbounded<ConnectResponse>();
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _reader;

    private ServiceScriptedAgent(AsyncDuplexStreamingCall<ConnectRequest, ConnectResponse> call)
    {
        _call = call;
        _reader = Task.Run(ReadAsync);
    }

    /// <summary>The status the stream ended with, once it ended.</summary>
    public Task<Status> Ended => _ended.Task;

    private readonly TaskCompletionSource<Status> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<ServiceScriptedAgent> ConnectAsync(GrpcChannel channel, Hello hello, Metadata? headers = null)
    {
        var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(ServiceTestHost.Methods.Connect, null, new CallOptions(headers));
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

    public Task SendAsync(ConnectRequest message) => _call.RequestStream.WriteAsync(message);

    public Task CompleteAsync() => _call.RequestStream.CompleteAsync();

    /// <summary>The next message from the scheduler; fails the test when none arrives in time.</summary>
    public async Task<ConnectResponse> NextAsync()
    {
        using var timeout = new CancellationTokenSource(ServiceTestHost.Timeout);
        try
        {
            return await _received.Reader.ReadAsync(timeout.Token);
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
            while (await _call.ResponseStream.MoveNext(_cts.Token))
            {
                _received.Writer.TryWrite(_call.ResponseStream.Current);
            }

            _ended.TrySetResult(_call.GetStatus());
        }
        catch (RpcException ex)
        {
            _ended.TrySetResult(ex.Status);
        }
        catch (OperationCanceledException)
        {
            _ended.TrySetResult(Status.DefaultCancelled);
        }
        finally
        {
            _received.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _call.Dispose();
        await _reader;
        _cts.Dispose();
    }
}
