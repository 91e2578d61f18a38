using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>
/// One entry of a namespace's run change feed: the run's state changed, one of its steps' states changed, it was
/// submitted, or (<see cref="Deleted"/>) retention deleted it. One store call that changes a run several times
/// appends one entry for it, carrying the state the call left it in.
/// </summary>
/// <param name="Cursor">Pass as the after-cursor of <see cref="IRunStore.ReadRunChangesAsync"/> to read what follows.</param>
/// <param name="RunId">The run that changed.</param>
/// <param name="State">The run's state after the change (its last state when deleted).</param>
/// <param name="Deleted">The run no longer exists.</param>
public sealed record RunChange(string Cursor, string RunId, RunState State, bool Deleted);

/// <summary>A read of the run change feed.</summary>
/// <param name="Changes">The entries after the cursor, oldest first.</param>
/// <param name="Cursor">Where the next read continues: the last entry's cursor, or the cursor read after when there was none.</param>
/// <param name="CursorExpired">
/// The cursor is not one the feed can continue from: entries after it have been trimmed, or it is ahead of the feed
/// (from a store that lost its data, or another store). <see cref="Changes"/> is then empty and <see cref="Cursor"/>
/// is the feed's newest entry, from which a reader that starts over continues.
/// </param>
public sealed record RunChangePage(IReadOnlyList<RunChange> Changes, string Cursor, bool CursorExpired);

/// <summary>The run change feed's cursor format, shared by the stores: the entry's position in the feed, in decimal.</summary>
internal static class RunFeedCursor
{
    /// <summary>Most entries one read returns.</summary>
    public const int MaxRead = 1000;

    public static string Of(long position) => position.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The position a cursor names; a cursor this store did not issue is InvalidArgument on after_cursor.</summary>
    public static long Parse(string cursor) =>
        cursor.Length is > 0 and <= 19
        && long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var position)
            ? position
            : throw RunStoreException.Invalid("after_cursor",
                "after_cursor is not a cursor this server issued; pass the cursor of the last message received, or leave it empty for a snapshot");

    public static int Clamp(int max) => max switch
    {
        < 0 => throw RunStoreException.Invalid("max", $"max is {max}; pass 1 to {MaxRead}"),
        > MaxRead => MaxRead,
        _ => max,
    };
}
