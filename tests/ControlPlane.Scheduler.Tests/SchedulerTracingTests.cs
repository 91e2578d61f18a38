using ControlPlane.Scheduler.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

public sealed class SchedulerTracingTests
{
    [Fact]
    public async Task Add_WithoutOtlpEndpoint_RegistersNoTracerProvider()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration[SchedulerTracing.EndpointVariable] = "";

        SchedulerTracing.Add(builder, new SchedulerOptions(), stores: null);

        await using var app = builder.Build();
        Assert.Null(app.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task Add_WithOtlpEndpoint_RegistersATracerProvider()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration[SchedulerTracing.EndpointVariable] = "http://127.0.0.1:4317";

        SchedulerTracing.Add(builder, new SchedulerOptions(), stores: null);

        await using var app = builder.Build();
        Assert.NotNull(app.Services.GetService<TracerProvider>());
    }
}
