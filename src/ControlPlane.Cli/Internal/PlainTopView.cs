using System.Globalization;
using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// <c>cpctl top</c> without a terminal (pipes, --plain): one block per refresh, each line opening with what it is about
/// (snapshot, queue, cap, agent, step, runs) and then key=value fields, so grep and awk can read it. A blank line ends a block.
/// </summary>
internal static class PlainTopView
{
    public static void Write(TextWriter output, TopSnapshot snapshot)
    {
        output.WriteLine($"snapshot {snapshot.Taken.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} queues={snapshot.Queues.Count} agents={snapshot.Agents.Count} steps={snapshot.Steps.Count}");
        foreach (var queue in snapshot.Queues)
        {
            output.WriteLine($"queue {queue.Queue} ready={queue.Ready} running={queue.Running} agents={queue.Agents} p50={TopSnapshot.Latency(queue.DispatchLatencyP50)} p95={TopSnapshot.Latency(queue.DispatchLatencyP95)}");
        }

        foreach (var cap in snapshot.Caps)
        {
            output.WriteLine($"cap {cap.Kind} {cap.Name} used={cap.Used} limit={(cap.Limit == 0 ? "-" : cap.Limit.ToString(CultureInfo.InvariantCulture))}");
        }

        if (snapshot.MoreCaps > 0)
        {
            output.WriteLine($"caps more={snapshot.MoreCaps}");
        }

        foreach (var agent in snapshot.Agents)
        {
            output.WriteLine(
                $"agent {agent.AgentId} {TextRender.Name(agent.State).ToLowerInvariant()} slots={agent.UsedSlots}/{agent.Slots} queues={Queues(agent)} heartbeat={snapshot.Ago(agent.LastHeartbeatAt)} host={Or(agent.Host)}");
        }

        foreach (var item in snapshot.Steps)
        {
            var step = item.Step;
            output.WriteLine(
                $"step {item.RunId}/{step.Id} {TextRender.Name(step.State).ToLowerInvariant()} attempt={step.Attempt} agent={Or(step.AgentId)} progress={TextRender.Number(step.Progress)}% age={snapshot.Ago(item.Since)} run={Or(item.RunName)} message={step.ProgressMessage.ReplaceLineEndings(" ")}");
        }

        output.WriteLine($"runs running={snapshot.RunsLookedAt + snapshot.MoreRuns}{(snapshot.MoreRunsUncounted ? "+" : string.Empty)} looked_at={snapshot.RunsLookedAt}");
        if (snapshot.MoreRunsText() is { } more)
        {
            output.WriteLine(more);
        }

        output.WriteLine();
        output.Flush();
    }

    /// <summary>A refresh that could not reach the scheduler: the block says so, and the next refresh tries again.</summary>
    public static void WriteProblem(TextWriter output, DateTimeOffset when, string problem)
    {
        output.WriteLine($"snapshot {when.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} failed");
        output.WriteLine(problem);
        output.WriteLine();
        output.Flush();
    }

    public static string Queues(V1.Agent agent) => agent.Queues.Count == 0 ? "default" : string.Join(",", agent.Queues);

    private static string Or(string value) => value.Length == 0 ? "-" : value;
}
