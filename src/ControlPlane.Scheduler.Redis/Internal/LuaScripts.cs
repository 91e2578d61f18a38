using System.Globalization;
using System.Reflection;
using System.Text;
using ControlPlane.V1;
using StackExchange.Redis;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>
/// The store's Lua scripts: each embedded Scripts/*.lua, prefixed with the transition tables rendered
/// from the shared state machines and with common.lua, loaded once and called by SHA.
/// </summary>
#pragma warning disable CA1001 // One instance for the life of the process; its SemaphoreSlim never creates a wait handle, so nothing needs releasing.
internal sealed class LuaScripts
#pragma warning restore CA1001
{
    public const string Submit = "submit";
    public const string Claim = "claim";
    public const string Report = "report";
    public const string Renew = "renew";
    public const string Maintenance = "maintenance";
    public const string FreezeLeases = "freeze_leases";
    public const string Cancel = "cancel";
    public const string Pause = "pause";
    public const string Resume = "resume";
    public const string RetryRun = "retry_run";
    public const string Gate = "gate";
    public const string AgentConnect = "agent_connect";
    public const string AgentState = "agent_state";
    public const string SetLimit = "set_limit";
    public const string GetRun = "get_run";
    public const string RunFeed = "run_feed";

    private static readonly string[] StateChanging =
    [
        Submit, Claim, Report, Renew, Maintenance, FreezeLeases, Cancel, Pause, Resume, RetryRun, Gate, AgentConnect, AgentState, SetLimit,
    ];

    private readonly Dictionary<string, string> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _shas = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loadLock = new(1, 1);

    public LuaScripts()
    {
        var prefix = RenderTransitionTables() + ReadResource("common");
        foreach (var name in StateChanging)
        {
            _sources[name] = prefix + "\n" + ReadResource(name);
        }

        _sources[GetRun] = ReadResource(GetRun);
        _sources[RunFeed] = ReadResource(RunFeed);
    }

    public int Count => _sources.Count;

    /// <summary>The full text of a script as sent to Redis.</summary>
    public string Source(string name) => _sources[name];

    public async Task LoadAsync(IServer server)
    {
        await _loadLock.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var (name, source) in _sources)
            {
                var sha = await server.ScriptLoadAsync(source).ConfigureAwait(false);
                lock (_shas)
                {
                    _shas[name] = sha;
                }
            }
        }
        finally
        {
            _loadLock.Release();
        }
    }

    public byte[] Sha(string name)
    {
        lock (_shas)
        {
            return _shas.TryGetValue(name, out var sha)
                ? sha
                : throw new InvalidOperationException($"script '{name}' was not loaded; call LoadAsync first");
        }
    }

    /// <summary>ST[from][to] and RT[from][to] Lua tables from the one transition table of each state machine.</summary>
    internal static string RenderTransitionTables()
    {
        var sb = new StringBuilder();
        sb.Append("local ST = ").Append(Render(StepStateMachine.Transitions.Select(t => ((int)t.From, (int)t.To)))).Append('\n');
        sb.Append("local RT = ").Append(Render(RunStateMachine.Transitions.Select(t => ((int)t.From, (int)t.To)))).Append('\n');
        sb.Append("local STEP_NAMES = ").Append(RenderNames(Enum.GetValues<StepState>().Select(s => ((int)s, StateNames.Of(s))))).Append('\n');
        sb.Append("local RUN_NAMES = ").Append(RenderNames(Enum.GetValues<RunState>().Select(s => ((int)s, StateNames.Of(s))))).Append('\n');
        sb.Append("local REASON = ").Append(RenderReasons()).Append('\n');
        sb.Append("local RUN_FEED_LENGTH = ").Append(RunStoreOptions.DefaultRunFeedLength.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("local FORMAT = '").Append(StoreFormat.Current.ToString(CultureInfo.InvariantCulture)).Append("'\n");
        sb.Append("local MAX_LOG_LINES_PER_STEP = ").Append(ReportLimits.MaxLogLinesPerStep.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("local MAX_PROGRESS_PER_STEP = ").Append(ReportLimits.MaxProgressEventsPerStep.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("local LOG_TRUNCATED = ").Append(LuaString(ReportLimits.LogTruncatedLine)).Append('\n');
        sb.Append("local PROGRESS_TRUNCATED = ").Append(LuaString(ReportLimits.ProgressTruncatedLine)).Append('\n');
        return sb.ToString();
    }

    private static string Render(IEnumerable<(int From, int To)> pairs)
    {
        var sb = new StringBuilder("{ ");
        foreach (var group in pairs.GroupBy(p => p.From).OrderBy(g => g.Key))
        {
            sb.Append('[').Append(group.Key.ToString(CultureInfo.InvariantCulture)).Append("] = { ");
            foreach (var (_, to) in group)
            {
                sb.Append('[').Append(to.ToString(CultureInfo.InvariantCulture)).Append("] = true, ");
            }

            sb.Append("}, ");
        }

        return sb.Append('}').ToString();
    }

    /// <summary>A Lua string literal of <paramref name="text"/>.</summary>
    private static string LuaString(string text) =>
        "'" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    private static string RenderNames(IEnumerable<(int Value, string Name)> names)
    {
        var sb = new StringBuilder("{ ");
        foreach (var (value, name) in names)
        {
            sb.Append('[').Append(value.ToString(CultureInfo.InvariantCulture)).Append("] = '").Append(name).Append("', ");
        }

        return sb.Append('}').ToString();
    }

    /// <summary>REASON.RUN_NOT_FOUND = 1, ...: controlplane.v1.ErrorReason by its name without the ERROR_REASON_ prefix.</summary>
    private static string RenderReasons()
    {
        const string Prefix = "ERROR_REASON_";
        var sb = new StringBuilder("{ ");
        foreach (var value in ErrorsReflection.Descriptor.EnumTypes[0].Values.Where(v => v.Number != 0))
        {
            sb.Append(value.Name[Prefix.Length..]).Append(" = ").Append(value.Number.ToString(CultureInfo.InvariantCulture)).Append(", ");
        }

        return sb.Append('}').ToString();
    }

    private static string ReadResource(string name)
    {
        var assembly = typeof(LuaScripts).Assembly;
        var resource = assembly.GetManifestResourceNames().SingleOrDefault(n => n.EndsWith(".Scripts." + name + ".lua", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"embedded script Scripts/{name}.lua is missing from {assembly.GetName().Name}");
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
