namespace ControlPlane.Scheduler.Internal;

/// <summary>Order of one run's READY steps in a queue: higher priority first, then the one ready longest.</summary>
internal sealed class ReadyOrder : IComparer<EmbeddedStep>
{
    public static ReadyOrder Instance { get; } = new();

    public int Compare(EmbeddedStep? x, EmbeddedStep? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }

        if (x is null || y is null)
        {
            return x is null ? -1 : 1;
        }

        var byPriority = y.Spec.Priority.CompareTo(x.Spec.Priority);
        return byPriority != 0 ? byPriority : x.ReadySeq.CompareTo(y.ReadySeq);
    }
}
