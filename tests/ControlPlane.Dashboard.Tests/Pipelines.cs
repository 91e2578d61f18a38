using ControlPlane.V1;

namespace ControlPlane.Dashboard.Tests;

/// <summary>The runs the browser tests watch: shell steps that log and report progress, and gates.</summary>
internal static class Pipelines
{
    /// <summary>
    /// checkout → build, unit-tests → approve (gate) → deploy. build reports 50 % and then waits until
    /// <paramref name="goFile"/> exists, so the test sees it running and a log line arrive after it opened the log.
    /// </summary>
    public static RunSpec Release(string goFile) => new()
    {
        Name = "release-1.4.2",
        Labels = { ["app"] = "web", ["env"] = "staging" },
        Steps =
        {
            Shell("checkout", "for i in 1 2 3; do echo \"checkout: fetched part $i of 3\"; echo \"::cp progress $((i * 33)) part $i\"; sleep 0.2; done"),
            Shell("build",
                "echo 'build: compiling 12 modules'; echo '::cp progress 50 compiled'; echo 'build: waiting for the artifact store';"
                + $" while [ ! -f '{goFile}' ]; do sleep 0.1; done; echo 'build: artifact stored'; echo '::cp progress 100 stored'",
                "checkout"),
            Shell("unit-tests", "for i in 1 2 3 4; do echo \"tests: suite $i passed\"; echo \"::cp progress $((i * 25)) suite $i\"; sleep 0.2; done", "checkout"),
            new StepSpec { Id = "approve", Kind = StepKind.Gate, Needs = { "build", "unit-tests" } },
            Shell("deploy", "echo 'deploy: rolling out'; echo 'release 1.4.2 deployed to staging' > \"$CP_OUTPUT_FILE\"", "approve"),
        },
    };

    public static RunSpec Nightly() => new()
    {
        Name = "nightly-report",
        Labels = { ["team"] = "data" },
        Steps = { Shell("report", "echo 'report: 1,204 rows'; echo '::cp progress 100 done'") },
    };

    public static RunSpec Flaky() => new()
    {
        Name = "import-customers",
        Labels = { ["team"] = "data", ["source"] = "crm" },
        Steps = { Shell("import", "echo 'import: connection refused by crm.internal:5432' >&2; exit 3") },
    };

    public static RunSpec GateOnly() => new()
    {
        Name = "change-freeze",
        Labels = { ["env"] = "prod" },
        Steps =
        {
            new StepSpec { Id = "sign-off", Kind = StepKind.Gate },
            Shell("announce", "echo 'announce: freeze lifted'", "sign-off"),
        },
    };

    private static StepSpec Shell(string id, string command, params string[] needs) =>
        new() { Id = id, Kind = StepKind.Task, Framework = "shell", Command = command, Needs = { needs } };
}
