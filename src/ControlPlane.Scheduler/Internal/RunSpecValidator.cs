using ControlPlane.Internal;
using System.Text.RegularExpressions;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Checks a whole RunSpec and reports every broken rule at once, each with its field path and
/// how to fix it, so a client fixes a spec in one round instead of one error at a time.
/// </summary>
internal static partial class RunSpecValidator
{
    /// <summary>Most steps one run may have.</summary>
    public const int MaxSteps = 10_000;

    /// <summary>Largest serialized StepSpec.params, in bytes.</summary>
    public const int MaxParamsBytes = 1024 * 1024;

    /// <summary>Largest serialized RunSpec, in bytes.</summary>
    public const int MaxSpecBytes = 4 * 1024 * 1024;

    private const string NameRule = "must match [a-z0-9][a-z0-9._-]{0,62} (lowercase letters, digits, '.', '_', '-'; at most 63 characters)";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^(\*|[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*)/(\*|[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*)(\s*;.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex MediaTypePattern();

    /// <summary>True when <paramref name="name"/> is a valid run name, step id, queue or concurrency key.</summary>
    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

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
        var v = new List<SpecViolation>();

        if (spec.Name.Length == 0)
        {
            v.Add(new("name", "is required; give the run a name that " + NameRule));
        }
        else if (!IsValidName(spec.Name))
        {
            v.Add(new("name", $"'{spec.Name}' {NameRule}"));
        }

        if (spec.Queue.Length > 0 && !IsValidName(spec.Queue))
        {
            v.Add(new("queue", $"'{spec.Queue}' {NameRule}"));
        }

        if (spec.Concurrency < 0)
        {
            v.Add(new("concurrency", $"is {spec.Concurrency}; use 0 for no cap or a positive number of steps"));
        }

        ValidateLabels(spec, v);

        foreach (var (unit, limit) in spec.Budget.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!IsValidName(unit))
            {
                v.Add(new($"budget[{unit}]", $"unit name '{unit}' {NameRule}"));
            }

            if (double.IsNaN(limit) || limit < 0)
            {
                v.Add(new($"budget[{unit}]", $"is {limit}; a budget must be a number >= 0"));
            }
        }

        ValidateAmountRanges(spec, v);

        if (spec.Retention is { } retention && !IsValidDuration(retention, allowZero: false))
        {
            v.Add(new("retention", "must be a positive duration, or unset to keep the run"));
        }

        if (spec.Steps.Count == 0)
        {
            v.Add(new("steps", "a run needs at least one step"));
        }

        if (spec.Steps.Count > MaxSteps)
        {
            v.Add(new("steps", $"has {spec.Steps.Count} steps; at most {MaxSteps:N0} are allowed, split the work into several runs"));
        }

        var firstIndexById = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            var id = spec.Steps[i].Id;
            if (id.Length == 0)
            {
                v.Add(new($"steps[{i}].id", "is required; give the step an id that " + NameRule));
            }
            else if (!IsValidName(id))
            {
                v.Add(new($"steps[{i}].id", $"'{id}' {NameRule}"));
            }
            else if (firstIndexById.TryGetValue(id, out var first))
            {
                v.Add(new($"steps[{i}].id", $"duplicate step id '{id}' (already used by steps[{first}]); give each step a unique id"));
            }
            else
            {
                firstIndexById[id] = i;
            }
        }

        for (var i = 0; i < spec.Steps.Count; i++)
        {
            ValidateStep(spec, i, firstIndexById, v);
        }

        ReportCycles(spec, firstIndexById, v);

        if (spec.CalculateSize() is var size && size > MaxSpecBytes)
        {
            v.Add(new("", $"the spec is {size:N0} bytes serialized; at most {MaxSpecBytes:N0} are allowed, move large params to an artifact store and pass references"));
        }

        return v;
    }

    private static void ValidateStep(RunSpec spec, int i, Dictionary<string, int> indexById, List<SpecViolation> v)
    {
        var step = spec.Steps[i];
        var at = $"steps[{i}]";
        var gate = StepDefaults.KindOf(step) == StepKind.Gate;

        if (!System.Enum.IsDefined(step.Kind))
        {
            v.Add(new($"{at}.kind", $"unknown kind {(int)step.Kind}; use STEP_KIND_TASK or STEP_KIND_GATE"));
        }

        if (gate)
        {
            if (step.Framework.Length > 0)
            {
                v.Add(new($"{at}.framework", $"a gate runs on no agent, so it takes no framework (got '{step.Framework}'); remove it or make the step a task"));
            }

            if (step.Command.Length > 0)
            {
                v.Add(new($"{at}.command", "a gate runs nothing; remove the command or make the step a task"));
            }

            if (step.Handler.Length > 0)
            {
                v.Add(new($"{at}.handler", "a gate runs nothing; remove the handler or make the step a task"));
            }
        }
        else if (step.Framework.Length == 0)
        {
            v.Add(new($"{at}.framework", $"a task needs a compute framework: one of {string.Join(", ", StepDefaults.KnownFrameworks)}"));
        }
        else if (step.Framework == StepDefaults.ShellFramework)
        {
            if (step.Command.Length == 0)
            {
                v.Add(new($"{at}.command", "a shell step needs a command (the script run by /bin/sh -c)"));
            }

            if (step.Handler.Length > 0)
            {
                v.Add(new($"{at}.handler", "handler is for dotnet steps; a shell step runs its command"));
            }
        }
        else if (step.Framework == StepDefaults.DotnetFramework)
        {
            if (step.Handler.Length == 0)
            {
                v.Add(new($"{at}.handler", "a dotnet step needs a handler (the name an IStepHandler is registered under in the agent host)"));
            }

            if (step.Command.Length > 0)
            {
                v.Add(new($"{at}.command", "command is for shell steps; a dotnet step runs its handler"));
            }
        }
        else
        {
            v.Add(new($"{at}.framework", $"unknown framework '{step.Framework}'; known: {string.Join(", ", StepDefaults.KnownFrameworks)}"));
        }

        if (step.Queue.Length > 0 && !IsValidName(step.Queue))
        {
            v.Add(new($"{at}.queue", $"'{step.Queue}' {NameRule}"));
        }

        if (step.ConcurrencyKey.Length > 0 && !IsValidName(step.ConcurrencyKey))
        {
            v.Add(new($"{at}.concurrency_key", $"'{step.ConcurrencyKey}' {NameRule}"));
        }

        if (step.Slots < 0)
        {
            v.Add(new($"{at}.slots", $"is {step.Slots}; use 0 for the default ({StepDefaults.Slots}) or a positive number"));
        }

        if (!System.Enum.IsDefined(step.RunIf))
        {
            v.Add(new($"{at}.run_if", $"unknown run_if {(int)step.RunIf}; use RUN_IF_ON_SUCCESS, RUN_IF_ALWAYS or RUN_IF_ON_FAILURE"));
        }
        else if (step.Needs.Count == 0 && step.RunIf is RunIf.OnFailure or RunIf.Always)
        {
            var name = step.RunIf == RunIf.OnFailure ? "on_failure" : "always";
            v.Add(new($"{at}.run_if", $"run_if: {name} depends on the outcome of needed steps, but this step needs none; add needs or remove run_if"));
        }

        if (step.Params is { } parameters && parameters.CalculateSize() is var paramSize && paramSize > MaxParamsBytes)
        {
            v.Add(new($"{at}.params", $"is {paramSize:N0} bytes serialized; at most {MaxParamsBytes:N0} are allowed, pass large data as an upstream output or a URI"));
        }

        if (step.InputType.Length > 0 && !MediaTypePattern().IsMatch(step.InputType))
        {
            v.Add(new($"{at}.input_type", $"'{step.InputType}' is not a media type; write type/subtype such as text/plain or text/*"));
        }

        if (step.OutputType.Length > 0 && !MediaTypePattern().IsMatch(step.OutputType))
        {
            v.Add(new($"{at}.output_type", $"'{step.OutputType}' is not a media type; write type/subtype such as application/json"));
        }

        ValidateNeeds(spec, i, indexById, v);
        ValidateRetry(step.Retry, at, v);

        if (step.Timeout is { } timeout && !IsValidDuration(timeout, allowZero: false))
        {
            v.Add(new($"{at}.timeout", "must be a positive duration, or unset for no limit"));
        }

        foreach (var (unit, amount) in step.Estimate.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (double.IsNaN(amount) || amount < 0)
            {
                v.Add(new($"{at}.estimate[{unit}]", $"is {amount}; an estimate must be a number >= 0"));
            }

            if (spec.Budget.Count > 0 && !spec.Budget.ContainsKey(unit))
            {
                var known = string.Join(", ", spec.Budget.Keys.OrderBy(k => k, StringComparer.Ordinal));
                v.Add(new($"{at}.estimate[{unit}]", $"unit '{unit}' is not in the run's budget ({known}); add it to budget or remove it from the estimate"));
            }
        }
    }

    /// <summary>
    /// Budgets and estimates the stores can add up exactly: finite and at most <see cref="ReportLimits.MaxAmount"/>
    /// (NaN and negative amounts are reported with the other checks of each field).
    /// </summary>
    private static void ValidateAmountRanges(RunSpec spec, List<SpecViolation> v)
    {
        foreach (var (unit, limit) in spec.Budget.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (limit > ReportLimits.MaxAmount)
            {
                v.Add(new($"budget[{unit}]", $"is {Text(limit)}; a budget must be finite and at most {ReportLimits.MaxAmountText}"));
            }
        }

        for (var i = 0; i < spec.Steps.Count; i++)
        {
            foreach (var (unit, amount) in spec.Steps[i].Estimate.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (amount > ReportLimits.MaxAmount)
                {
                    v.Add(new($"steps[{i}].estimate[{unit}]", $"is {Text(amount)}; an estimate must be finite and at most {ReportLimits.MaxAmountText}"));
                }
            }
        }

        static string Text(double amount) => amount.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void ValidateNeeds(RunSpec spec, int i, Dictionary<string, int> indexById, List<SpecViolation> v)
    {
        var step = spec.Steps[i];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var n = 0; n < step.Needs.Count; n++)
        {
            var need = step.Needs[n];
            var at = $"steps[{i}].needs[{n}]";
            if (need == step.Id && step.Id.Length > 0)
            {
                v.Add(new(at, $"step '{step.Id}' needs itself; remove it from its own needs"));
                continue;
            }

            if (!seen.Add(need))
            {
                v.Add(new(at, $"'{need}' is listed twice; list each needed step once"));
                continue;
            }

            if (!indexById.TryGetValue(need, out var needIndex))
            {
                var closest = Closest(need, indexById.Keys);
                var hint = closest is not null
                    ? $"did you mean '{closest}'?"
                    : $"known step ids: {string.Join(", ", indexById.Keys.Take(20))}{(indexById.Count > 20 ? ", ..." : "")}";
                v.Add(new(at, $"step '{step.Id}' needs unknown step '{need}'; {hint}"));
                continue;
            }

            var upstream = spec.Steps[needIndex];
            if (step.InputType.Length > 0 && upstream.OutputType.Length > 0
                && MediaTypePattern().IsMatch(step.InputType) && MediaTypePattern().IsMatch(upstream.OutputType)
                && !MediaTypesMatch(step.InputType, upstream.OutputType))
            {
                v.Add(new(at, $"step '{step.Id}' expects input_type '{step.InputType}' but '{need}' produces output_type '{upstream.OutputType}'; make the types agree (wildcards such as text/* are allowed)"));
            }
        }
    }

    private static void ValidateRetry(RetryPolicy? retry, string at, List<SpecViolation> v)
    {
        if (retry is null)
        {
            return;
        }

        if (retry.MaxAttempts < 0 || retry.MaxAttempts > RetryBackoff.MaxAttemptsLimit)
        {
            v.Add(new($"{at}.retry.max_attempts", $"is {retry.MaxAttempts}; use 0..{RetryBackoff.MaxAttemptsLimit} (0 or 1: no retry)"));
        }

        if (retry.Backoff is { } backoff && !IsValidDuration(backoff, allowZero: true))
        {
            v.Add(new($"{at}.retry.backoff", "must be a duration >= 0"));
        }

        if (retry.MaxBackoff is { } maxBackoff && !IsValidDuration(maxBackoff, allowZero: false))
        {
            v.Add(new($"{at}.retry.max_backoff", "must be a positive duration"));
        }
        else if (retry.Backoff is { } b && retry.MaxBackoff is { } m && IsValidDuration(b, true) && b.ToTimeSpan() > m.ToTimeSpan())
        {
            v.Add(new($"{at}.retry.max_backoff", $"{m.ToTimeSpan()} is shorter than backoff {b.ToTimeSpan()}; raise max_backoff or lower backoff"));
        }

        if (double.IsNaN(retry.BackoffMultiplier) || retry.BackoffMultiplier < 0 || (retry.BackoffMultiplier > 0 && retry.BackoffMultiplier < 1))
        {
            v.Add(new($"{at}.retry.backoff_multiplier", $"is {retry.BackoffMultiplier}; use 0 for the default ({RetryBackoff.DefaultMultiplier}) or a factor >= 1"));
        }
    }

    /// <summary>Finds every cycle over known needs (iterative DFS) and names each one once.</summary>
    private static void ReportCycles(RunSpec spec, Dictionary<string, int> indexById, List<SpecViolation> v)
    {
        var n = spec.Steps.Count;
        var color = new byte[n]; // 0 new, 1 on the stack, 2 done
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var edges = new List<int>[n];
        for (var i = 0; i < n; i++)
        {
            edges[i] = [];
            if (!indexById.TryGetValue(spec.Steps[i].Id, out var own) || own != i)
            {
                continue; // duplicate or invalid id: already reported
            }

            foreach (var need in spec.Steps[i].Needs.Distinct(StringComparer.Ordinal))
            {
                if (indexById.TryGetValue(need, out var j) && j != i)
                {
                    edges[i].Add(j);
                }
            }
        }

        var path = new List<int>();
        var stack = new Stack<(int Node, int Next)>();
        for (var start = 0; start < n; start++)
        {
            if (color[start] != 0)
            {
                continue;
            }

            stack.Push((start, 0));
            color[start] = 1;
            path.Add(start);
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                if (next < edges[node].Count)
                {
                    stack.Push((node, next + 1));
                    var to = edges[node][next];
                    if (color[to] == 0)
                    {
                        color[to] = 1;
                        path.Add(to);
                        stack.Push((to, 0));
                    }
                    else if (color[to] == 1)
                    {
                        var cycle = path.Skip(path.IndexOf(to)).ToList();
                        // Name a cycle from its smallest index so the same cycle is reported once.
                        var min = cycle.IndexOf(cycle.Min());
                        var rotated = cycle.Skip(min).Concat(cycle.Take(min)).ToList();
                        var key = string.Join(",", rotated);
                        if (reported.Add(key))
                        {
                            var names = rotated.Select(k => spec.Steps[k].Id).Append(spec.Steps[rotated[0]].Id);
                            v.Add(new($"steps[{rotated[0]}].needs", $"the needs form a cycle: {string.Join(" -> ", names)} (each step needs the next); remove one of these needs"));
                        }
                    }
                }
                else
                {
                    color[node] = 2;
                    path.RemoveAt(path.Count - 1);
                }
            }
        }
    }

    /// <summary>Whether an input type accepts an output type, either side possibly a wildcard (text/*, */*).</summary>
    public static bool MediaTypesMatch(string inputType, string outputType)
    {
        var (inMain, inSub) = Split(inputType);
        var (outMain, outSub) = Split(outputType);
        var mainOk = inMain == "*" || outMain == "*" || string.Equals(inMain, outMain, StringComparison.OrdinalIgnoreCase);
        var subOk = inSub == "*" || outSub == "*" || string.Equals(inSub, outSub, StringComparison.OrdinalIgnoreCase);
        return mainOk && subOk;

        static (string Main, string Sub) Split(string type)
        {
            var bare = type.Split(';')[0].Trim();
            var slash = bare.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? (bare, "*") : (bare[..slash], bare[(slash + 1)..]);
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

    private static string? Closest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var d = EditDistance.Between(name, candidate);
            if (d < bestDistance)
            {
                (best, bestDistance) = (candidate, d);
            }
        }

        // Only suggest names that are plausibly a typo.
        return best is not null && bestDistance <= Math.Max(2, name.Length / 3) ? best : null;
    }
}
