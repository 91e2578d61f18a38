using ControlPlane.Internal;
using System.Globalization;
using System.Text.RegularExpressions;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Checks a whole RunSpec and reports every broken rule at once, each with its field path and
/// how to fix it, so a client fixes a spec in one round instead of one error at a time.
/// </summary>
/// <remarks>
/// Whatever a client sends, the cost stays linear in the spec's size: counts and sizes are checked before anything
/// else, the listing stops at <see cref="MaxViolations"/>, did-you-mean work has a fixed budget, cycles are found in
/// one pass and one is named, and user text is clipped before it goes into a message.
/// </remarks>
internal static partial class RunSpecValidator
{
    /// <summary>Most steps one run may have.</summary>
    public const int MaxSteps = 10_000;

    /// <summary>Largest serialized StepSpec.params, in bytes.</summary>
    public const int MaxParamsBytes = 1024 * 1024;

    /// <summary>Largest serialized RunSpec, in bytes.</summary>
    public const int MaxSpecBytes = 4 * 1024 * 1024;

    /// <summary>
    /// Most entries <see cref="Validate"/> returns, the last one saying that more were found when the listing was cut:
    /// the status that carries them holds no more (see <see cref="RpcErrors.MaxViolations"/>).
    /// </summary>
    public const int MaxViolations = RpcErrors.MaxViolations;

    /// <summary>Longest description of one violation, in characters; user text inside it is clipped shorter still.</summary>
    public const int MaxDescriptionLength = 512;

    /// <summary>Longest field path of one violation (paths name map keys the client chose).</summary>
    public const int MaxFieldLength = 128;

    /// <summary>Unknown step ids that get a "did you mean" suggestion; later ones are only reported.</summary>
    public const int MaxSuggestions = 10;

    /// <summary>
    /// Edit-distance table cells one validation may spend on suggestions (<see cref="EditDistance.CellsOnThisThread"/>);
    /// a few milliseconds of work, enough to compare a typo with every id of a 10,000-step run.
    /// </summary>
    public const long SuggestionCellBudget = 2_000_000;

    /// <summary>Longest input or output media type; RFC 6838 allows 127 characters for each of type and subtype.</summary>
    public const int MaxMediaTypeLength = 255;

    // How much of a value the client sent is quoted back, so a megabyte-long id can not make a megabyte-long message.
    private const int MaxQuoted = 64;

    // Ids named in a "known step ids" hint and in a cycle before the middle is elided.
    private const int MaxListed = 10;

    private const string NameRule = "must match [a-z0-9][a-z0-9._-]{0,62} (lowercase letters, digits, '.', '_', '-'; at most 63 characters)";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^(\*|[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*)/(\*|[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*)(\s*;.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex MediaTypePattern();

    /// <summary>True when <paramref name="name"/> is a valid run name, step id, queue or concurrency key.</summary>
    public static bool IsValidName(string name) => name.Length <= 63 && NamePattern().IsMatch(name);

    /// <summary>Most secrets one step may name.</summary>
    public const int MaxSecretsPerStep = 32;

    // The names only; whether each exists and allows the step's queue is checked against the secret store at submit.
    private static void ValidateSecrets(StepSpec step, string at, Violations v)
    {
        if (step.Secrets.Count == 0)
        {
            return;
        }

        if (StepDefaults.KindOf(step) == StepKind.Gate)
        {
            v.Add($"{at}.secrets", "a gate runs nothing and takes no secrets; remove secrets or make the step a task");
            return;
        }

        if (step.Secrets.Count > MaxSecretsPerStep)
        {
            v.Add($"{at}.secrets", $"names {step.Secrets.Count} secrets; at most {MaxSecretsPerStep} are allowed per step");
            return;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var variables = new HashSet<string>(StringComparer.Ordinal);
        for (var j = 0; j < step.Secrets.Count; j++)
        {
            var name = step.Secrets[j];
            if (!IsValidName(name))
            {
                v.Add($"{at}.secrets[{j}]", $"{Quote(name)} is not a secret name: it {NameRule}");
            }
            else if (!seen.Add(name))
            {
                v.Add($"{at}.secrets[{j}]", $"{Quote(name)} is listed twice; name each secret once");
            }
            else if (!variables.Add(name.ToUpperInvariant().Replace('-', '_').Replace('.', '_')))
            {
                v.Add($"{at}.secrets[{j}]", $"{Quote(name)} becomes the same environment variable as another secret of this step ('-' and '.' both become '_'); use one of them");
            }
        }
    }

    public static void ThrowIfInvalid(RunSpec spec)
    {
        var violations = Validate(spec);
        if (violations.Count > 0)
        {
            throw new RunSpecValidationException(violations);
        }
    }

    public static IReadOnlyList<SpecViolation> Validate(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var v = new Violations();

        // Counts and sizes first: a spec over a limit is refused before any per-step work runs.
        if (spec.Steps.Count > MaxSteps)
        {
            v.Add("steps", $"has {spec.Steps.Count:N0} steps; at most {MaxSteps:N0} are allowed, split the work into several runs");
            return v.Finish();
        }

        // Protobuf sums sizes in an int: a spec beyond 2 GiB (built in memory, never received) comes out negative.
        if (spec.CalculateSize() is var size && (size > MaxSpecBytes || size < 0))
        {
            var shown = size < 0 ? "over 2 GiB" : $"{size:N0} bytes";
            v.Add("", $"the spec is {shown} serialized; at most {MaxSpecBytes:N0} bytes are allowed, move large params to an artifact store and pass references");
            return v.Finish();
        }

        ValidateRun(spec, v);

        var firstIndexById = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Steps.Count && !v.Overflowed; i++)
        {
            var id = spec.Steps[i].Id;
            if (id.Length == 0)
            {
                v.Add($"steps[{i}].id", "is required; give the step an id that " + NameRule);
            }
            else if (!IsValidName(id))
            {
                v.Add($"steps[{i}].id", $"{Quote(id)} {NameRule}");
            }
            else if (firstIndexById.TryGetValue(id, out var first))
            {
                v.Add($"steps[{i}].id", $"duplicate step id '{id}' (already used by steps[{first}]); give each step a unique id");
            }
            else
            {
                firstIndexById[id] = i;
            }
        }

        // Parsed once per step, so an edge costs the same however long its types are.
        var types = new (MediaType? Input, MediaType? Output)[spec.Steps.Count];
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            types[i] = (ParseType(spec.Steps[i].InputType), ParseType(spec.Steps[i].OutputType));
        }

        var suggestions = new Suggestions(firstIndexById);
        for (var i = 0; i < spec.Steps.Count && !v.Overflowed; i++)
        {
            ValidateStep(spec, i, v);
            ValidateNeeds(spec, i, firstIndexById, types, suggestions, v);
        }

        if (!v.Overflowed)
        {
            ReportCycle(spec, firstIndexById, v);
        }

        return v.Finish();
    }

    private static void ValidateRun(RunSpec spec, Violations v)
    {
        if (spec.Name.Length == 0)
        {
            v.Add("name", "is required; give the run a name that " + NameRule);
        }
        else if (!IsValidName(spec.Name))
        {
            v.Add("name", $"{Quote(spec.Name)} {NameRule}");
        }

        if (spec.Queue.Length > 0 && !IsValidName(spec.Queue))
        {
            v.Add("queue", $"{Quote(spec.Queue)} {NameRule}");
        }

        if (spec.Concurrency < 0)
        {
            v.Add("concurrency", $"is {spec.Concurrency}; use 0 for no cap or a positive number of steps");
        }

        ValidateLabels(spec, v);

        foreach (var (unit, limit) in spec.Budget.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (v.Overflowed)
            {
                return;
            }

            if (!IsValidName(unit))
            {
                v.Add($"budget[{Clip(unit)}]", $"unit name {Quote(unit)} {NameRule}");
            }

            if (double.IsNaN(limit) || limit < 0)
            {
                v.Add($"budget[{Clip(unit)}]", $"is {Format(limit)}; a budget must be a number >= 0");
            }
        }

        ValidateAmountRanges(spec, v);

        if (spec.Retention is { } retention
            && (!IsValidDuration(retention, allowZero: true) || retention.ToTimeSpan() > RunStoreOptions.MaxRetention))
        {
            v.Add("retention", $"must be between 0 and {Format(RunStoreOptions.MaxRetention.TotalDays)} days (got {Format(retention.Seconds)}s {Format(retention.Nanos)}ns); " +
                "0 keeps the finished run forever, unset uses the server default");
        }

        if (spec.Steps.Count == 0)
        {
            v.Add("steps", "a run needs at least one step");
        }
    }

    private static void ValidateStep(RunSpec spec, int i, Violations v)
    {
        var step = spec.Steps[i];
        var at = $"steps[{i}]";
        var gate = StepDefaults.KindOf(step) == StepKind.Gate;

        if (!System.Enum.IsDefined(step.Kind))
        {
            v.Add($"{at}.kind", $"unknown kind {(int)step.Kind}; use STEP_KIND_TASK or STEP_KIND_GATE");
        }

        if (gate)
        {
            if (step.Framework.Length > 0)
            {
                v.Add($"{at}.framework", $"a gate runs on no agent, so it takes no framework (got {Quote(step.Framework)}); remove it or make the step a task");
            }

            if (step.Command.Length > 0)
            {
                v.Add($"{at}.command", "a gate runs nothing; remove the command or make the step a task");
            }

            if (step.Handler.Length > 0)
            {
                v.Add($"{at}.handler", "a gate runs nothing; remove the handler or make the step a task");
            }
        }
        else if (step.Framework.Length == 0)
        {
            v.Add($"{at}.framework", $"a task needs a compute framework: one of {string.Join(", ", StepDefaults.KnownFrameworks)}");
        }
        else if (step.Framework == StepDefaults.ShellFramework)
        {
            if (step.Command.Length == 0)
            {
                v.Add($"{at}.command", "a shell step needs a command (the script run by /bin/sh -c)");
            }

            if (step.Handler.Length > 0)
            {
                v.Add($"{at}.handler", "handler is for dotnet steps; a shell step runs its command");
            }
        }
        else if (step.Framework == StepDefaults.DotnetFramework)
        {
            if (step.Handler.Length == 0)
            {
                v.Add($"{at}.handler", "a dotnet step needs a handler (the name an IStepHandler is registered under in the agent host)");
            }

            if (step.Command.Length > 0)
            {
                v.Add($"{at}.command", "command is for shell steps; a dotnet step runs its handler");
            }
        }
        else
        {
            v.Add($"{at}.framework", $"unknown framework {Quote(step.Framework)}; known: {string.Join(", ", StepDefaults.KnownFrameworks)}");
        }

        if (step.Queue.Length > 0 && !IsValidName(step.Queue))
        {
            v.Add($"{at}.queue", $"{Quote(step.Queue)} {NameRule}");
        }

        if (step.ConcurrencyKey.Length > 0 && !IsValidName(step.ConcurrencyKey))
        {
            v.Add($"{at}.concurrency_key", $"{Quote(step.ConcurrencyKey)} {NameRule}");
        }

        ValidateSecrets(step, at, v);

        if (step.Slots < 0)
        {
            v.Add($"{at}.slots", $"is {step.Slots}; use 0 for the default ({StepDefaults.Slots}) or a positive number");
        }

        if (!System.Enum.IsDefined(step.RunIf))
        {
            v.Add($"{at}.run_if", $"unknown run_if {(int)step.RunIf}; use RUN_IF_ON_SUCCESS, RUN_IF_ALWAYS or RUN_IF_ON_FAILURE");
        }
        else if (step.Needs.Count == 0 && step.RunIf is RunIf.OnFailure or RunIf.Always)
        {
            var name = step.RunIf == RunIf.OnFailure ? "on_failure" : "always";
            v.Add($"{at}.run_if", $"run_if: {name} depends on the outcome of needed steps, but this step needs none; add needs or remove run_if");
        }

        if (step.Params is { } parameters && parameters.CalculateSize() is var paramSize && paramSize > MaxParamsBytes)
        {
            v.Add($"{at}.params", $"is {paramSize:N0} bytes serialized; at most {MaxParamsBytes:N0} are allowed, pass large data as an upstream output or a URI");
        }

        ReportType(step.InputType, $"{at}.input_type", "text/plain or text/*", v);
        ReportType(step.OutputType, $"{at}.output_type", "application/json", v);

        ValidateRetry(step.Retry, at, v);

        if (step.Timeout is { } timeout && !IsValidDuration(timeout, allowZero: false))
        {
            v.Add($"{at}.timeout", "must be a positive duration, or unset for no limit");
        }

        foreach (var (unit, amount) in step.Estimate.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (v.Overflowed)
            {
                return;
            }

            if (double.IsNaN(amount) || amount < 0)
            {
                v.Add($"{at}.estimate[{Clip(unit)}]", $"is {Format(amount)}; an estimate must be a number >= 0");
            }

            if (spec.Budget.Count > 0 && !spec.Budget.ContainsKey(unit))
            {
                var known = Listing(spec.Budget.Keys.Order(StringComparer.Ordinal).Take(MaxListed + 1).ToList(), spec.Budget.Count);
                v.Add($"{at}.estimate[{Clip(unit)}]", $"unit {Quote(unit)} is not in the run's budget ({known}); add it to budget or remove it from the estimate");
            }
        }
    }

    /// <summary>
    /// Budgets and estimates the stores can add up exactly: finite and at most <see cref="ReportLimits.MaxAmount"/>
    /// (NaN and negative amounts are reported with the other checks of each field).
    /// </summary>
    private static void ValidateAmountRanges(RunSpec spec, Violations v)
    {
        foreach (var (unit, limit) in spec.Budget.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (limit > ReportLimits.MaxAmount)
            {
                v.Add($"budget[{Clip(unit)}]", $"is {Text(limit)}; a budget must be finite and at most {ReportLimits.MaxAmountText}");
            }
        }

        for (var i = 0; i < spec.Steps.Count; i++)
        {
            foreach (var (unit, amount) in spec.Steps[i].Estimate.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (amount > ReportLimits.MaxAmount)
                {
                    v.Add($"steps[{i}].estimate[{Clip(unit)}]", $"is {Text(amount)}; an estimate must be finite and at most {ReportLimits.MaxAmountText}");
                }
            }
        }

        static string Text(double amount) => amount.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void ValidateNeeds(
        RunSpec spec, int i, Dictionary<string, int> indexById, (MediaType? Input, MediaType? Output)[] types, Suggestions suggestions, Violations v)
    {
        var step = spec.Steps[i];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var n = 0; n < step.Needs.Count && !v.Overflowed; n++)
        {
            var need = step.Needs[n];
            var at = new NeedAt(i, n);
            if (need == step.Id && step.Id.Length > 0)
            {
                v.Add(at.ToString(), $"step {Quote(step.Id)} needs itself; remove it from its own needs");
                continue;
            }

            if (!seen.Add(need))
            {
                v.Add(at.ToString(), $"{Quote(need)} is listed twice; list each needed step once");
                continue;
            }

            if (!indexById.TryGetValue(need, out var needIndex))
            {
                var closest = suggestions.Closest(need);
                var hint = closest is not null
                    ? $"did you mean '{closest}'?"
                    : $"known step ids: {Listing(indexById.Keys.Take(MaxListed + 1).ToList(), indexById.Count)}";
                v.Add(at.ToString(), $"step {Quote(step.Id)} needs unknown step {Quote(need)}; {hint}");
                continue;
            }

            if (types[i].Input is { } input && types[needIndex].Output is { } output && !input.Accepts(output))
            {
                v.Add(at.ToString(), $"step '{step.Id}' expects input_type {Quote(step.InputType)} but '{need}' produces output_type {Quote(spec.Steps[needIndex].OutputType)}; make the types agree (wildcards such as text/* are allowed)");
            }
        }
    }

    /// <summary>The field path of one need; built only when it is reported.</summary>
    private readonly record struct NeedAt(int Step, int Need)
    {
        public override string ToString() => $"steps[{Step}].needs[{Need}]";
    }

    private static void ValidateRetry(RetryPolicy? retry, string at, Violations v)
    {
        if (retry is null)
        {
            return;
        }

        if (retry.MaxAttempts < 0 || retry.MaxAttempts > RetryBackoff.MaxAttemptsLimit)
        {
            v.Add($"{at}.retry.max_attempts", $"is {retry.MaxAttempts}; use 0..{RetryBackoff.MaxAttemptsLimit} (0 or 1: no retry)");
        }

        if (retry.Backoff is { } backoff && !IsValidDuration(backoff, allowZero: true))
        {
            v.Add($"{at}.retry.backoff", "must be a duration >= 0");
        }

        if (retry.MaxBackoff is { } maxBackoff && !IsValidDuration(maxBackoff, allowZero: false))
        {
            v.Add($"{at}.retry.max_backoff", "must be a positive duration");
        }
        else if (retry.Backoff is { } b && retry.MaxBackoff is { } m && IsValidDuration(b, true) && b.ToTimeSpan() > m.ToTimeSpan())
        {
            v.Add($"{at}.retry.max_backoff", $"{m.ToTimeSpan()} is shorter than backoff {b.ToTimeSpan()}; raise max_backoff or lower backoff");
        }

        if (double.IsNaN(retry.BackoffMultiplier) || retry.BackoffMultiplier < 0 || (retry.BackoffMultiplier > 0 && retry.BackoffMultiplier < 1))
        {
            v.Add($"{at}.retry.backoff_multiplier", $"is {Format(retry.BackoffMultiplier)}; use 0 for the default ({RetryBackoff.DefaultMultiplier}) or a factor >= 1");
        }
    }

    /// <summary>
    /// Names one cycle over known needs, and counts the other steps that lie on cycles. Tarjan's strongly connected
    /// components find every step on a cycle in one linear pass; the named cycle is the shortest one through the first
    /// such step (a breadth-first search inside its component), so even a 10,000-step knot costs linear time.
    /// </summary>
    private static void ReportCycle(RunSpec spec, Dictionary<string, int> indexById, Violations v)
    {
        var n = spec.Steps.Count;
        var edges = new int[n][];
        for (var i = 0; i < n; i++)
        {
            edges[i] = [];
            if (!indexById.TryGetValue(spec.Steps[i].Id, out var own) || own != i)
            {
                continue; // duplicate or invalid id: already reported
            }

            var targets = new List<int>();
            var seen = new HashSet<int>();
            foreach (var need in spec.Steps[i].Needs)
            {
                if (indexById.TryGetValue(need, out var j) && j != i && seen.Add(j))
                {
                    targets.Add(j);
                }
            }

            edges[i] = [.. targets];
        }

        var component = StronglyConnectedComponents(edges, out var componentSize);
        var root = -1;
        var onCycles = 0;
        for (var i = 0; i < n; i++)
        {
            if (componentSize[component[i]] > 1)
            {
                onCycles++;
                if (root < 0)
                {
                    root = i;
                }
            }
        }

        if (root < 0)
        {
            return;
        }

        var cycle = ShortestCycleThrough(root, edges, component);
        var names = cycle.Select(k => spec.Steps[k].Id).Append(spec.Steps[root].Id).ToList();
        var shown = names.Count <= MaxListed
            ? string.Join(" -> ", names)
            : string.Join(" -> ", names.Take(MaxListed - 3)) + $" -> ... ({names.Count - MaxListed:N0} more) -> " + string.Join(" -> ", names.TakeLast(3));
        var others = onCycles - cycle.Count;
        var rest = others > 0 ? $"; {others:N0} other steps are on cycles too, validate again after breaking this one" : "";
        v.Add($"steps[{root}].needs", $"the needs form a cycle: {shown} (each step needs the next); remove one of these needs{rest}");
    }

    /// <summary>Tarjan's algorithm without recursion (a 10,000-step chain would overflow the stack): each node's component id.</summary>
    private static int[] StronglyConnectedComponents(int[][] edges, out List<int> componentSize)
    {
        var n = edges.Length;
        var index = new int[n];
        var low = new int[n];
        var component = new int[n];
        Array.Fill(index, -1);
        var onStack = new bool[n];
        var stack = new Stack<int>();
        var work = new Stack<(int Node, int Next)>();
        componentSize = [];
        var counter = 0;
        for (var start = 0; start < n; start++)
        {
            if (index[start] >= 0)
            {
                continue;
            }

            work.Push((start, 0));
            while (work.Count > 0)
            {
                var (node, next) = work.Pop();
                if (next == 0)
                {
                    index[node] = low[node] = counter++;
                    stack.Push(node);
                    onStack[node] = true;
                }
                else
                {
                    // Back from the child edges[node][next - 1].
                    low[node] = Math.Min(low[node], low[edges[node][next - 1]]);
                }

                var descended = false;
                for (; next < edges[node].Length; next++)
                {
                    var to = edges[node][next];
                    if (index[to] < 0)
                    {
                        work.Push((node, next + 1));
                        work.Push((to, 0));
                        descended = true;
                        break;
                    }

                    if (onStack[to])
                    {
                        low[node] = Math.Min(low[node], index[to]);
                    }
                }

                if (descended || low[node] != index[node])
                {
                    continue;
                }

                var id = componentSize.Count;
                var size = 0;
                int member;
                do
                {
                    member = stack.Pop();
                    onStack[member] = false;
                    component[member] = id;
                    size++;
                }
                while (member != node);
                componentSize.Add(size);
            }
        }

        return component;
    }

    /// <summary>The steps of a shortest cycle through <paramref name="root"/>, root first, staying inside its component.</summary>
    private static List<int> ShortestCycleThrough(int root, int[][] edges, int[] component)
    {
        var parent = new int[edges.Length];
        Array.Fill(parent, -2); // not reached yet
        parent[root] = -1;
        var queue = new Queue<int>();
        queue.Enqueue(root);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            foreach (var to in edges[node])
            {
                if (to == root)
                {
                    var path = new List<int>();
                    for (var k = node; k >= 0; k = parent[k])
                    {
                        path.Add(k);
                    }

                    path.Reverse();
                    return path;
                }

                if (component[to] == component[root] && parent[to] == -2)
                {
                    parent[to] = node;
                    queue.Enqueue(to);
                }
            }
        }

        throw new InvalidOperationException("a step in a strongly connected component of two or more steps lies on a cycle");
    }

    /// <summary>Whether an input type accepts an output type, either side possibly a wildcard (text/*, */*).</summary>
    public static bool MediaTypesMatch(string inputType, string outputType) => MediaType.Parse(inputType).Accepts(MediaType.Parse(outputType));

    /// <summary>A step's media type split once; null when it is missing or malformed (<see cref="ReportType"/> says so).</summary>
    private static MediaType? ParseType(string type) =>
        type.Length > 0 && type.Length <= MaxMediaTypeLength && MediaTypePattern().IsMatch(type) ? MediaType.Parse(type) : null;

    private static void ReportType(string type, string field, string example, Violations v)
    {
        if (type.Length > MaxMediaTypeLength)
        {
            v.Add(field, $"is {type.Length:N0} characters; a media type has at most {MaxMediaTypeLength}, write type/subtype such as {example}");
        }
        else if (type.Length > 0 && !MediaTypePattern().IsMatch(type))
        {
            v.Add(field, $"{Quote(type)} is not a media type; write type/subtype such as {example}");
        }
    }

    private static bool IsValidDuration(Duration d, bool allowZero)
    {
        if (d.Seconds < 0 || d.Nanos < 0 || d.Nanos >= 1_000_000_000 || d.Seconds > 315_576_000_000L)
        {
            return false;
        }

        return allowZero || d.Seconds > 0 || d.Nanos > 0;
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary><paramref name="items"/> joined, with "..." when <paramref name="total"/> is more than <see cref="MaxListed"/>.</summary>
    private static string Listing(IReadOnlyList<string> items, int total) =>
        string.Join(", ", items.Take(MaxListed).Select(Clip)) + (total > MaxListed ? ", ..." : "");

    /// <summary>A value the client sent, quoted, clipped to <see cref="MaxQuoted"/> characters with its full length said.</summary>
    private static string Quote(string value) =>
        value.Length <= MaxQuoted ? $"'{value}'" : $"'{Clip(value)}' ({value.Length:N0} characters)";

    /// <summary>At most <see cref="MaxQuoted"/> characters of <paramref name="value"/>, never splitting a surrogate pair.</summary>
    private static string Clip(string value) => Truncate(value, MaxQuoted);

    private static string Truncate(string value, int max)
    {
        if (value.Length <= max)
        {
            return value;
        }

        var cut = char.IsHighSurrogate(value[max - 2]) ? max - 2 : max - 1;
        return string.Concat(value.AsSpan(0, cut), "…");
    }

    private readonly record struct MediaType(string Main, string Sub)
    {
        public static MediaType Parse(string type)
        {
            var bare = type.Split(';')[0].Trim();
            var slash = bare.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? new(bare, "*") : new(bare[..slash], bare[(slash + 1)..]);
        }

        public bool Accepts(MediaType output)
        {
            var mainOk = Main == "*" || output.Main == "*" || string.Equals(Main, output.Main, StringComparison.OrdinalIgnoreCase);
            var subOk = Sub == "*" || output.Sub == "*" || string.Equals(Sub, output.Sub, StringComparison.OrdinalIgnoreCase);
            return mainOk && subOk;
        }
    }

    /// <summary>The violations of one validation: at most <see cref="MaxViolations"/> entries, each of bounded size.</summary>
    private sealed class Violations
    {
        private readonly List<SpecViolation> _list = [];

        /// <summary>True once a violation was found beyond what is listed: the checks stop here.</summary>
        public bool Overflowed { get; private set; }

        public void Add(string field, string description)
        {
            if (_list.Count >= MaxViolations - 1)
            {
                Overflowed = true;
                return;
            }

            _list.Add(new(Truncate(field, MaxFieldLength), Truncate(description, MaxDescriptionLength)));
        }

        public List<SpecViolation> Finish()
        {
            if (Overflowed)
            {
                _list.Add(new("", $"more violations were found; only the first {MaxViolations - 1} are listed, fix these and submit again to see the rest"));
            }

            return _list;
        }
    }

    /// <summary>
    /// "Did you mean" for unknown step ids, with fixed work: <see cref="MaxSuggestions"/> ids at most, candidates whose length
    /// is too far off skipped for free, a bounded distance that stops early, and <see cref="SuggestionCellBudget"/> in all.
    /// </summary>
    private sealed class Suggestions(Dictionary<string, int> indexById)
    {
        private readonly long _budgetEnd = EditDistance.CellsOnThisThread + SuggestionCellBudget;
        private int _left = MaxSuggestions;

        public string? Closest(string name)
        {
            if (_left <= 0 || EditDistance.CellsOnThisThread >= _budgetEnd)
            {
                return null;
            }

            _left--;

            // Only names that are plausibly a typo: a few edits, more for longer names.
            var limit = Math.Clamp(name.Length / 3, 2, 4);
            string? best = null;
            foreach (var candidate in indexById.Keys)
            {
                if (Math.Abs(candidate.Length - name.Length) > limit)
                {
                    continue;
                }

                if (EditDistance.CellsOnThisThread >= _budgetEnd)
                {
                    break;
                }

                var d = EditDistance.AtMost(name, candidate, limit);
                if (d <= limit)
                {
                    best = candidate;
                    if (d <= 1)
                    {
                        break;
                    }

                    limit = d - 1;
                }
            }

            return best;
        }
    }
}
