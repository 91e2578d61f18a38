using System.Globalization;
using System.Text;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Cli.Internal;

/// <summary>The human-readable output of cpctl.</summary>
internal static class TextRender
{
    /// <summary>RUN_STATE_RUNNING → RUNNING, STEP_STATE_WAITING_APPROVAL → WAITING_APPROVAL.</summary>
    public static string Name(System.Enum value)
    {
        var text = value.ToString();
        var builder = new StringBuilder(text.Length + 4);
        for (var i = 0; i < text.Length; i++)
        {
            if (i > 0 && char.IsUpper(text[i]))
            {
                builder.Append('_');
            }

            builder.Append(char.ToUpperInvariant(text[i]));
        }

        return builder.ToString();
    }

    public static string Time(Timestamp? timestamp) =>
        timestamp is null ? "-" : timestamp.ToDateTime().ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Labels(IDictionary<string, string> labels) =>
        labels.Count == 0 ? "-" : string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

    public static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    public static void RunDetails(TextWriter writer, Run run)
    {
        writer.WriteLine($"Run       {run.Id}");
        writer.WriteLine($"Name      {Or(run.Name)}");
        writer.WriteLine($"State     {Name(run.State)}");
        if (run.Error.Length > 0)
        {
            writer.WriteLine($"Error     {run.Error}");
        }

        writer.WriteLine($"Labels    {Labels(run.Labels)}");
        writer.WriteLine($"Created   {Time(run.CreatedAt)}");
        writer.WriteLine($"Started   {Time(run.StartedAt)}");
        writer.WriteLine($"Finished  {Time(run.FinishedAt)}");
        var units = (run.Spec?.Budget.Keys ?? []).Concat(run.BudgetUsed.Keys).Concat(run.BudgetReserved.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var unit in units)
        {
            var limit = run.Spec is not null && run.Spec.Budget.TryGetValue(unit, out var l) ? Number(l) : "none";
            writer.WriteLine($"Budget    {unit}: used {Number(run.BudgetUsed.GetValueOrDefault(unit))}, reserved {Number(run.BudgetReserved.GetValueOrDefault(unit))}, limit {limit}");
        }

        if (run.Steps.Count == 0)
        {
            return;
        }

        writer.WriteLine();
        var kinds = run.Spec?.Steps.ToDictionary(s => s.Id, s => s.Kind, StringComparer.Ordinal) ?? [];
        var table = new TextTable("STEP", "KIND", "STATE", "ATTEMPT", "PROGRESS", "AGENT", "DETAIL");
        foreach (var step in run.Steps)
        {
            var kind = kinds.GetValueOrDefault(step.Id) == StepKind.Gate ? "gate" : "task";
            var progress = step.State is StepState.Running || step.Progress > 0 ? Number(step.Progress) + "%" : "-";
            table.Add(step.Id, kind, Name(step.State), step.Attempt == 0 ? "-" : step.Attempt.ToString(CultureInfo.InvariantCulture), progress, Or(step.AgentId), StepDetail(step));
        }

        table.Write(writer);
    }

    /// <summary>The one thing worth knowing about a step in its current state.</summary>
    public static string StepDetail(Step step)
    {
        if (step.BlockedReason.Length > 0 && step.State is StepState.Ready or StepState.Blocked)
        {
            return "waiting: " + step.BlockedReason;
        }

        if (step.Error.Length > 0)
        {
            return step.Error;
        }

        if (step.DecidedBy.Length > 0)
        {
            return step.DecisionComment.Length > 0 ? $"decided by {step.DecidedBy}: {step.DecisionComment}" : $"decided by {step.DecidedBy}";
        }

        if (step.ProgressMessage.Length > 0)
        {
            return step.ProgressMessage;
        }

        return string.Empty;
    }

    public static void RunList(TextWriter writer, IEnumerable<Run> runs)
    {
        var table = new TextTable("ID", "NAME", "STATE", "CREATED", "FINISHED", "LABELS");
        foreach (var run in runs)
        {
            table.Add(run.Id, Or(run.Name), Name(run.State), Time(run.CreatedAt), Time(run.FinishedAt), Labels(run.Labels));
        }

        if (table.Count == 0)
        {
            writer.WriteLine("no runs");
            return;
        }

        table.Write(writer);
    }

    public static void AgentList(TextWriter writer, IEnumerable<V1.Agent> agents)
    {
        var table = new TextTable("ID", "HOST", "STATE", "SLOTS", "QUEUES", "FRAMEWORKS", "LABELS", "LAST HEARTBEAT");
        foreach (var agent in agents)
        {
            table.Add(
                agent.AgentId,
                Or(agent.Host),
                Name(agent.State),
                $"{agent.UsedSlots}/{agent.Slots}",
                agent.Queues.Count == 0 ? "default" : string.Join(",", agent.Queues),
                agent.Frameworks.Count == 0 ? "-" : string.Join(",", agent.Frameworks),
                Labels(agent.Labels),
                Time(agent.LastHeartbeatAt));
        }

        if (table.Count == 0)
        {
            writer.WriteLine("no agents");
            return;
        }

        table.Write(writer);
    }

    /// <summary>One line per event (a log event with several lines prints one line per log line).</summary>
    public static void Event(TextWriter writer, RunEvent runEvent)
    {
        var time = runEvent.Time is null ? "--:--:--.---" : runEvent.Time.ToDateTime().ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        var prefix = $"#{runEvent.Seq} {time}";
        switch (runEvent.EventCase)
        {
            case RunEvent.EventOneofCase.RunStateChanged:
                var run = runEvent.RunStateChanged;
                writer.WriteLine($"{prefix} run {Name(run.FromState)} -> {Name(run.ToState)}{Suffix(run.Reason)}");
                break;
            case RunEvent.EventOneofCase.StepStateChanged:
                var step = runEvent.StepStateChanged;
                var attempt = step.Attempt > 0 ? $" attempt {step.Attempt}" : string.Empty;
                var agent = step.AgentId.Length > 0 ? $" on {step.AgentId}" : string.Empty;
                writer.WriteLine($"{prefix} step {step.StepId} {Name(step.FromState)} -> {Name(step.ToState)}{attempt}{agent}{Suffix(step.Reason)}");
                break;
            case RunEvent.EventOneofCase.StepProgressed:
                var progress = runEvent.StepProgressed;
                writer.WriteLine($"{prefix} step {progress.StepId} {Number(progress.Percent)}%{(progress.Message.Length > 0 ? " " + progress.Message : string.Empty)}");
                break;
            case RunEvent.EventOneofCase.StepCheckpointed:
                var checkpoint = runEvent.StepCheckpointed;
                writer.WriteLine($"{prefix} step {checkpoint.StepId} checkpoint ({checkpoint.Size} bytes, attempt {checkpoint.Attempt})");
                break;
            case RunEvent.EventOneofCase.StepLogged:
                var log = runEvent.StepLogged;
                var stream = log.Stream == LogStream.Stderr ? "stderr" : "stdout";
                foreach (var line in log.Lines)
                {
                    writer.WriteLine($"{prefix} step {log.StepId} {stream} | {line}");
                }

                break;
            case RunEvent.EventOneofCase.GateDecided:
                var gate = runEvent.GateDecided;
                var by = gate.DecidedBy.Length > 0 ? $" by {gate.DecidedBy}" : string.Empty;
                writer.WriteLine($"{prefix} gate {gate.StepId} {(gate.Approved ? "approved" : "rejected")}{by}{(gate.Comment.Length > 0 ? ": " + gate.Comment : string.Empty)}");
                break;
            default:
                writer.WriteLine($"{prefix} (event of a kind this cpctl does not know)");
                break;
        }
    }

    private static string Or(string value) => value.Length == 0 ? "-" : value;

    private static string Suffix(string reason) => reason.Length == 0 ? string.Empty : $" ({reason})";
}
