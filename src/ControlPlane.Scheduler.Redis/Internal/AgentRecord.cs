using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>Builds the Agent message from an agent hash as agent_connect.lua writes it.</summary>
internal static class AgentRecord
{
    /// <summary>
    /// An agent last heard from before <paramref name="silentSinceMs"/> shows as DISCONNECTED: the replica that served it
    /// may have died without ending its session.
    /// </summary>
    public static Agent From(string id, IReadOnlyDictionary<string, string> f, long silentSinceMs = long.MinValue)
    {
        var agent = new Agent
        {
            AgentId = id,
            Host = RunSnapshot.Get(f, "host"),
            Slots = RunSnapshot.Int(f, "slots"),
            UsedSlots = RunSnapshot.Int(f, "used"),
            State = (AgentState)RunSnapshot.Int(f, "st"),
            ConnectedAt = Ms(RunSnapshot.Long(f, "ca")),
            LastHeartbeatAt = Ms(RunSnapshot.Long(f, "hb")),
        };
        if (agent.State is AgentState.Connected or AgentState.Draining && RunSnapshot.Long(f, "hb") < silentSinceMs)
        {
            agent.State = AgentState.Disconnected;
        }

        agent.Frameworks.Add(StepMeta.ParseStrings(RunSnapshot.Get(f, "fw")));
        agent.Queues.Add(StepMeta.ParseStrings(RunSnapshot.Get(f, "q")));
        agent.Handlers.Add(StepMeta.ParseStrings(RunSnapshot.Get(f, "hd")));
        foreach (var (k, v) in StepMeta.ParseMap(RunSnapshot.Get(f, "lbl")))
        {
            agent.Labels[k] = v;
        }

        return agent;
    }

    public static Timestamp? Ms(long ms) => ms > 0 ? Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(ms)) : null;
}
