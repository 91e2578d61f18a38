using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.V1;
using Xunit;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The Lua prefix the Redis store renders from the shared transition tables.</summary>
public sealed class RedisLuaScriptsTests
{
    [Fact]
    public void RenderTransitionTables_EveryTableEdge_AppearsInTheLuaTables()
    {
        var lua = LuaScripts.RenderTransitionTables();
        var step = Section(lua, "local ST = ");
        var run = Section(lua, "local RT = ");

        foreach (var (from, to) in StepStateMachine.Transitions)
        {
            Assert.Contains($"[{(int)to}] = true", Row(step, (int)from), StringComparison.Ordinal);
        }

        foreach (var (from, to) in RunStateMachine.Transitions)
        {
            Assert.Contains($"[{(int)to}] = true", Row(run, (int)from), StringComparison.Ordinal);
        }

        Assert.Equal(StepStateMachine.Transitions.Count, CountEdges(step));
        Assert.Equal(RunStateMachine.Transitions.Count, CountEdges(run));
        Assert.Contains($"[{(int)StepState.WaitingApproval}] = 'STEP_STATE_WAITING_APPROVAL'", lua, StringComparison.Ordinal);
    }

    [Fact]
    public void Scripts_EveryStateChange_LoadsFromAnEmbeddedResourceWithItsWhyComment()
    {
        var scripts = new LuaScripts();

        foreach (var name in new[] { LuaScripts.Submit, LuaScripts.Claim, LuaScripts.Report, LuaScripts.Renew, LuaScripts.Maintenance, LuaScripts.FreezeLeases, LuaScripts.Cancel,
            LuaScripts.Pause, LuaScripts.Resume, LuaScripts.RetryRun, LuaScripts.Gate, LuaScripts.AgentConnect, LuaScripts.AgentState, LuaScripts.SetLimit })
        {
            var source = scripts.Source(name);
            Assert.Contains("local ST = ", source, StringComparison.Ordinal);
            Assert.Contains("-- " + name + ":", source, StringComparison.Ordinal);
        }
    }

    private static string Section(string lua, string start)
    {
        var from = lua.IndexOf(start, StringComparison.Ordinal) + start.Length;
        return lua[from..lua.IndexOf('\n', from)];
    }

    private static string Row(string table, int from)
    {
        var start = table.IndexOf($"[{from}] = {{", StringComparison.Ordinal);
        Assert.True(start >= 0, $"state {from} has no row");
        return table[start..table.IndexOf('}', start)];
    }

    private static int CountEdges(string table) => table.Split("= true").Length - 1;
}
