namespace ControlPlane.Internal;

/// <summary>
/// Levenshtein distance, for "did you mean" suggestions on unknown names (step ids, pipeline keys, flags). Linked as
/// source into the projects that suggest names, so the rule is written once.
/// </summary>
internal static class EditDistance
{
    // Work done on this thread, so tests can bound the cost of a suggestion pass by counting instead of timing.
    [ThreadStatic]
    private static long _cells;

    /// <summary>Table cells computed on the calling thread so far: the work every distance cost, summed.</summary>
    public static long CellsOnThisThread => _cells;

    /// <summary>The fewest single-character insertions, deletions and substitutions that turn <paramref name="a"/> into <paramref name="b"/>.</summary>
    public static int Between(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        _cells += (long)a.Length * b.Length;
        return previous[b.Length];
    }

    /// <summary>
    /// The distance between <paramref name="a"/> and <paramref name="b"/> when it is at most <paramref name="limit"/>,
    /// otherwise <c>limit + 1</c>. Only the diagonal band of width <c>2·limit + 1</c> is computed and the walk stops as soon
    /// as a whole row exceeds the limit, so one call costs at most <c>|a|·(2·limit + 1)</c> cells, and nothing when the
    /// lengths alone differ by more than the limit.
    /// </summary>
    public static int AtMost(string a, string b, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var over = limit + 1;
        if (Math.Abs(a.Length - b.Length) > limit)
        {
            return over;
        }

        // Cells outside the band can not be within the limit; they read as "over".
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = Math.Min(j, over);
        }

        for (var i = 1; i <= a.Length; i++)
        {
            var from = Math.Max(1, i - limit);
            var to = Math.Min(b.Length, i + limit);
            current[0] = Math.Min(i, over);
            if (from > 1)
            {
                current[from - 1] = over;
            }

            var rowMin = current[0];
            for (var j = from; j <= to; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                var d = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
                current[j] = Math.Min(d, over);
                rowMin = Math.Min(rowMin, current[j]);
            }

            if (to < b.Length)
            {
                current[to + 1] = over;
            }

            _cells += to - from + 1;
            if (rowMin > limit)
            {
                return over;
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
