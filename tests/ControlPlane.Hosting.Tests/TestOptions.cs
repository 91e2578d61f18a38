namespace ControlPlane.Hosting.Tests;

/// <summary>A daemon's options in miniature: one setting of each shape, and a validation that names the property.</summary>
public sealed class TestOptions
{
    public string Address { get; set; } = "http://127.0.0.1:7070";

    public string Id { get; set; } = "host";

    public int Slots { get; set; } = 2;

    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    public bool Verbose { get; set; }

    public IList<string> Queues { get; set; } = ["default"];

    public IDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>();

    public static DaemonSettings<TestOptions> Table { get; } = new(
        [
            DaemonSetting<TestOptions>.Text("Scheduler", "URL", "Where to connect.", "http://127.0.0.1:7070", (o, v) => o.Address = v, nameof(Address)),
            DaemonSetting<TestOptions>.Text("AgentId", "ID", "Who we are.", "host", (o, v) => o.Id = v, nameof(Id)),
            DaemonSetting<TestOptions>.Number("Slots", "How many at once.", "2", (o, v) => o.Slots = v),
            DaemonSetting<TestOptions>.Duration("GracePeriod", "How long to wait.", "30s", (o, v) => o.GracePeriod = v),
            DaemonSetting<TestOptions>.Boolean("Verbose", "Say more.", "false", (o, v) => o.Verbose = v),
            DaemonSetting<TestOptions>.List("Queues", "a,b", "Where to take work from.", "default", (o, v) => o.Queues = [.. v]),
            DaemonSetting<TestOptions>.Map("Labels", "Announced labels.", "none", (o, v) => o.Labels = new Dictionary<string, string>(v)),
        ],
        static o =>
        {
            if (o.Slots is < 1 or > 100)
            {
                throw new ArgumentException($"Slots is {o.Slots}; set it between 1 and 100.", nameof(Slots));
            }
        },
        new DeprecatedNames
        {
            AppSettingsSection = "Test",
            EnvironmentPrefix = "CP_TEST__",
            FlagPrefix = "--Test:",
            Flags = new Dictionary<string, string> { ["--id"] = "AgentId" },
        });
}
