using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Client.Tests;

public sealed class DependencyTests
{
    [Fact]
    public void ClientLibrary_Dependencies_HaveNoServerFramework()
    {
        var references = DependencyProbe.TransitiveReferences(typeof(ControlPlaneClient).Assembly);

        Assert.Contains("Grpc.Net.Client", references);
        Assert.DoesNotContain(references, r => r.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.DoesNotContain(references, r => r.StartsWith("ControlPlane.Scheduler", StringComparison.Ordinal));
        Assert.DoesNotContain("Microsoft.AspNetCore.App", DependencyProbe.FrameworkReferences("ControlPlane.Client"));
    }
}
