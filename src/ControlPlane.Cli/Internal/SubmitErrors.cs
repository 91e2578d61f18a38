using ControlPlane.Client;
using Grpc.Core;

namespace ControlPlane.Cli.Internal;

/// <summary>Reports a spec the scheduler rejected, each violation pointing at the line of the file that caused it.</summary>
internal static class SubmitErrors
{
    public static async Task<int> ReportRejectedAsync(PipelineFile pipeline, RpcException rejected, TextWriter error)
    {
        await error.WriteLineAsync($"error: the scheduler rejected {pipeline.Path} (INVALID_ARGUMENT):").ConfigureAwait(false);
        foreach (var line in pipeline.Describe(rejected.GetFieldViolations()))
        {
            await error.WriteLineAsync(line).ConfigureAwait(false);
        }

        return ExitCodes.InvalidInput;
    }
}
