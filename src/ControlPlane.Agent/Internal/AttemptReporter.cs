using ControlPlane.V1;
using Google.Protobuf;

namespace ControlPlane.Agent.Internal;

/// <summary>Turns a framework's reports into outbox messages carrying the attempt's fencing token, its secrets masked.</summary>
internal sealed class AttemptReporter(Outbox outbox, AttemptState attempt) : IStepReporter
{
    public void ReportProgress(double percent, string? message)
    {
        if (!attempt.Revoked)
        {
            outbox.Enqueue(new ConnectRequest
            {
                StepProgress = new StepProgress { FencingToken = attempt.FencingToken, Percent = percent, Message = attempt.Mask.Apply(message ?? string.Empty) },
            });
        }
    }

    public void ReportCheckpoint(ReadOnlyMemory<byte> data)
    {
        if (!attempt.Revoked)
        {
            outbox.Enqueue(new ConnectRequest
            {
                StepCheckpoint = new StepCheckpoint { FencingToken = attempt.FencingToken, Data = ByteString.CopyFrom(data.Span) },
            });
        }
    }

    public void ReportLog(LogStream stream, string line)
    {
        if (!attempt.Revoked)
        {
            outbox.Enqueue(new ConnectRequest
            {
                StepLog = new StepLog { FencingToken = attempt.FencingToken, Stream = stream, Lines = { attempt.Mask.Apply(line) } },
            });
        }
    }
}
