using System.Reflection;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;

namespace ControlPlane.Scheduler.Tests;

/// <summary>A claim whose reply is lost after the store took the steps: the stream repeats it and sends what it took.</summary>
public sealed class ServiceClaimRetryTests
{
    [Fact]
    public async Task Claim_ReplyLostAfterTheStoreTookTheStep_AssignsItAtAttemptOne()
    {
        LostClaimReplies lost = null!;
        await using var host = await ServiceTestHost.StartAsync(wrapStore: s => LostClaimReplies.Create(s, out lost));
        lost.ToLose = 1;
        await host.Store.SubmitRunAsync(Run(Shell("a")), null);
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", 1, "default"));

        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        Assert.Equal(("a", 1), (assignment.StepId, assignment.Attempt));
        var requests = lost.Requests;
        var lostAt = requests.FindIndex(r => r.ClaimId == lost.LostClaimId);
        Assert.NotNull(lost.LostClaimId);
        Assert.True(requests.Count > lostAt + 1, "the lost claim was never repeated");
        Assert.Equal(requests[lostAt], requests[lostAt + 1]);
        Assert.NotNull(requests[lostAt].SessionId);
    }

    [Fact]
    public async Task Claim_EveryAnsweredClaim_HasItsOwnId()
    {
        LostClaimReplies lost = null!;
        await using var host = await ServiceTestHost.StartAsync(wrapStore: s => LostClaimReplies.Create(s, out lost));
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", 1, "default"));
        await agent.NextAsync(Kind.Welcome);
        await lost.Claimed(1).WaitAsync(ServiceTestHost.Timeout);

        await host.Store.SubmitRunAsync(Run(Shell("a")), null);
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        // A claim that answered (even with nothing) is never repeated: each one has its own id.
        var ids = lost.Requests.Select(r => r.ClaimId).ToList();
        Assert.Equal(1, assignment.Attempt);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(ids, id => Assert.False(string.IsNullOrEmpty(id)));
    }

    /// <summary>A store whose next <see cref="ToLose"/> claims that take something are committed but answer as unreachable.</summary>
    public class LostClaimReplies : DispatchProxy
    {
        private readonly List<ClaimRequest> _requests = [];
        private readonly List<(int Count, TaskCompletionSource Reached)> _waiters = [];
        private IRunStore _inner = null!;
        private int _toLose;

        public int ToLose
        {
            get => Volatile.Read(ref _toLose);
            set => Volatile.Write(ref _toLose, value);
        }

        /// <summary>The claim id of the last claim whose reply was lost.</summary>
        public string? LostClaimId { get; private set; }

        /// <summary>Every claim request so far, in order.</summary>
        public List<ClaimRequest> Requests
        {
            get
            {
                lock (_requests)
                {
                    return [.. _requests];
                }
            }
        }

        public static IRunStore Create(IRunStore inner, out LostClaimReplies lost)
        {
            var proxy = Create<IRunStore, LostClaimReplies>();
            lost = (LostClaimReplies)(object)proxy;
            lost._inner = inner;
            return proxy;
        }

        /// <summary>Completes once <paramref name="count"/> claims have been answered.</summary>
        public Task Claimed(int count)
        {
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_requests)
            {
                if (_requests.Count >= count)
                {
                    reached.TrySetResult();
                }

                _waiters.Add((count, reached));
            }

            return reached.Task;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var result = targetMethod!.Invoke(_inner, args);
            return targetMethod.Name == nameof(IRunStore.ClaimAsync)
                ? ClaimAsync((ClaimRequest)args![0]!, (Task<IReadOnlyList<Assignment>>)result!)
                : result;
        }

        private async Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, Task<IReadOnlyList<Assignment>> claim)
        {
            var claimed = await claim;
            lock (_requests)
            {
                _requests.Add(request);
                foreach (var waiter in _waiters.Where(w => w.Count <= _requests.Count))
                {
                    waiter.Reached.TrySetResult();
                }
            }

            if (claimed.Count > 0 && Interlocked.Decrement(ref _toLose) >= 0)
            {
                LostClaimId = request.ClaimId;
                throw new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable,
                    "the run store (Redis) cannot be reached: the connection closed after the claim was sent");
            }

            return claimed;
        }
    }
}
