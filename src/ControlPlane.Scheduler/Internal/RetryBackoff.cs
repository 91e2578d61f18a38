using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>How many attempts a step gets and how long it waits between them (RetryPolicy with its defaults).</summary>
internal static class RetryBackoff
{
    /// <summary>Wait before the second attempt when RetryPolicy.backoff is unset.</summary>
    public static readonly TimeSpan DefaultBackoff = TimeSpan.FromSeconds(1);

    /// <summary>Growth factor of each further wait when RetryPolicy.backoff_multiplier is 0.</summary>
    public const double DefaultMultiplier = 2.0;

    /// <summary>Upper bound of a wait when RetryPolicy.max_backoff is unset.</summary>
    public static readonly TimeSpan DefaultMaxBackoff = TimeSpan.FromMinutes(5);

    /// <summary>Largest RetryPolicy.max_attempts accepted.</summary>
    public const int MaxAttemptsLimit = 100;

    /// <summary>Total attempts the policy allows, the first included: at least 1.</summary>
    public static int MaxAttempts(RetryPolicy? policy) => Math.Max(1, policy?.MaxAttempts ?? 1);

    /// <summary>
    /// The wait after attempt <paramref name="attemptThatFailed"/> (1 on the first try) failed:
    /// backoff * multiplier^(attempt-1), at most max_backoff.
    /// </summary>
    public static TimeSpan Compute(RetryPolicy? policy, int attemptThatFailed)
    {
        var backoff = policy?.Backoff is { } b ? b.ToTimeSpan() : DefaultBackoff;
        var multiplier = policy is { BackoffMultiplier: > 0 } ? policy.BackoffMultiplier : DefaultMultiplier;
        var max = policy?.MaxBackoff is { } m ? m.ToTimeSpan() : DefaultMaxBackoff;
        if (backoff <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var exponent = Math.Max(0, attemptThatFailed - 1);
        var ticks = backoff.Ticks * Math.Pow(multiplier, exponent);
        // Doubles overflow long long before max_backoff matters; clamp first.
        return ticks >= max.Ticks ? max : TimeSpan.FromTicks((long)ticks);
    }
}
