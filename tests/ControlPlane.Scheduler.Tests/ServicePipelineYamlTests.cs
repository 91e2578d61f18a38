using System.Net;
using System.Text;
using System.Text.Json;
using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;
using Xunit;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

/// <summary>SubmitRunRequest.pipeline_yaml: a pipeline file's text read on the server by cpctl's reader.</summary>
public sealed class ServicePipelineYamlTests : IAsyncLifetime
{
    private const string Pipeline = """
        name: from-yaml
        labels: { team: data }
        steps:
          - id: build
            framework: shell
            run: echo built
          - id: review
            kind: gate
            needs: [build]
        """;

    // Line 4 has an unknown key, line 6 a duration that is not one.
    private const string Broken = """
        name: broken
        steps:
          - id: build
            frameworkk: shell
            run: echo hi
            timeout: ten minutes
        """;

    private ServiceTestHost _host = null!;

    public async Task InitializeAsync() => _host = await ServiceTestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task SubmitRun_PipelineYaml_RunAsTheFileDescribesIt()
    {
        var response = await _host.Call(M.SubmitRun, new SubmitRunRequest { PipelineYaml = Pipeline, PipelineFileName = "hello.yaml" });

        Assert.True(response.Created);
        Assert.Equal("from-yaml", response.Run.Name);
        Assert.Equal("data", response.Run.Labels["team"]);
        Assert.Equal(["build", "review"], response.Run.Steps.Select(s => s.Id));
        Assert.Equal("echo built", response.Run.Spec.Steps[0].Command);
        Assert.Equal(StepKind.Gate, response.Run.Spec.Steps[1].Kind);
    }

    [Fact]
    public async Task SubmitRun_PipelineYamlThatDoesNotParse_OneViolationPerErrorWithLineAndColumn()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, new SubmitRunRequest { PipelineYaml = Broken, PipelineFileName = "hello.yaml" }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var violations = ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations;
        Assert.Equal(2, violations.Count);
        Assert.All(violations, v => Assert.Equal("pipeline_yaml", v.Field));
        Assert.StartsWith("hello.yaml:4:5: ", violations[0].Description, StringComparison.Ordinal);
        Assert.Contains("frameworkk", violations[0].Description, StringComparison.Ordinal);
        Assert.StartsWith("hello.yaml:6:5: steps[0].timeout: ", violations[1].Description, StringComparison.Ordinal);
        Assert.Empty((await _host.Call(M.ListRuns, new ListRunsRequest())).Runs);
    }

    [Fact]
    public async Task SubmitRun_PipelineYamlBreakingSpecRules_ViolationsPointAtTheLines()
    {
        const string yaml = """
            name: cyclic
            steps:
              - id: a
                framework: shell
                run: "true"
                needs: [missing]
            """;

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, new SubmitRunRequest { PipelineYaml = yaml }));

        var violation = Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations);
        Assert.Equal("pipeline_yaml", violation.Field);
        Assert.StartsWith("<pipeline>:6:", violation.Description, StringComparison.Ordinal);
        Assert.Contains("steps[0].needs[0]", violation.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitRun_SpecAndPipelineYamlBoth_InvalidArgument()
    {
        var request = new SubmitRunRequest { PipelineYaml = Pipeline, Spec = new RunSpec { Name = "x" } };

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, request));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("pipeline_yaml", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task SubmitRun_PipelineFileNameTooLong_InvalidArgument()
    {
        var request = new SubmitRunRequest { PipelineYaml = Pipeline, PipelineFileName = new string('f', 257) };

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, request));

        Assert.Equal("pipeline_file_name", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task SubmitRun_PipelineYamlOverJson_CreatedOrRefusedWithTheLines()
    {
        using var http = new HttpClient { BaseAddress = _host.Server.HttpAddress, Timeout = ServiceTestHost.Timeout };

        using var ok = await http.PostAsync("/v1/runs", Json(new { pipelineYaml = Pipeline, pipelineFileName = "hello.yaml" }));
        var created = JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("from-yaml", created.GetProperty("run").GetProperty("name").GetString());

        using var bad = await http.PostAsync("/v1/runs", Json(new { pipelineYaml = Broken, pipelineFileName = "hello.yaml" }));
        var body = await bad.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("hello.yaml:4:5", body, StringComparison.Ordinal);
        Assert.Contains("pipeline_yaml", body, StringComparison.Ordinal);
    }

    private static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}
