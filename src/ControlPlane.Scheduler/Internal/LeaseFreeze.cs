namespace ControlPlane.Scheduler.Internal;

/// <summary>The checks both stores make on a lease freeze's interval, so they refuse the same calls alike.</summary>
internal static class LeaseFreeze
{
    /// <summary>The interval in Unix milliseconds (the precision Redis keeps lease deadlines in), or InvalidArgument.</summary>
    public static (long Since, long Until) Validate(DateTimeOffset since, DateTimeOffset until)
    {
        if (since < DateTimeOffset.UnixEpoch)
        {
            throw RunStoreException.Invalid("since", $"since is {since:O}; pass the store time of the last successful maintenance pass, after 1970");
        }

        if (since > until)
        {
            throw RunStoreException.Invalid("until", $"until ({until:O}) is before since ({since:O}); pass the interval the store could not be reached, oldest end first");
        }

        return (since.ToUnixTimeMilliseconds(), until.ToUnixTimeMilliseconds());
    }
}
