using ControlPlane.Tests.Support;

namespace ControlPlane.Agent.Tests;

public sealed class DependencyTests
{
    [Fact]
    public void AgentLibrary_Dependencies_HaveNoServerFramework()
    {
        var references = DependencyProbe.TransitiveReferences(typeof(AgentWorker).Assembly);

        Assert.Contains("Grpc.Net.Client", references);
        Assert.DoesNotContain(references, r => r.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.DoesNotContain(references, r => r.StartsWith("ControlPlane.Scheduler", StringComparison.Ordinal));
        Assert.DoesNotContain("Microsoft.AspNetCore.App", DependencyProbe.FrameworkReferences("ControlPlane.Agent"));
    }
}
