using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>Builds the Agent message from an agent hash as agent_connect.lua writes it.</summary>
internal static class AgentRecord
{
    public static Agent From(string id, IReadOnlyDictionary<string, string> f)
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
