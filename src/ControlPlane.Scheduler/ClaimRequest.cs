namespace ControlPlane.Scheduler;

/// <summary>A claim of up to <paramref name="MaxSteps"/> READY steps for the agent's free slots.</summary>
public sealed record ClaimRequest(string AgentId, int MaxSteps)
{
    /// <summary>The longest <see cref="ClaimId"/> and <see cref="SessionId"/> accepted, in characters.</summary>
    public const int MaxIdLength = 64;

    /// <summary>
    /// Names this claim so that it can be repeated when its reply is lost (the store ran it, the caller never heard):
    /// the same id again returns the attempts the claim took that are still current (same steps, attempts and fencing
    /// tokens, their leases renewed) and takes nothing new. The store remembers a claim that took something for twice
    /// the lease; one that took nothing leaves no record, so repeating it is a new claim. Null: not repeatable.
    /// One to <see cref="MaxIdLength"/> letters, digits, '.', '_' or '-' (a GUID in any of its plain forms fits).
    /// </summary>
    public string? ClaimId { get; init; }

    /// <summary>
    /// The agent session (<see cref="AgentSession.SessionId"/>) of the stream the claim is for. When the agent has a
    /// newer session (it reconnected, possibly to another replica), the claim takes nothing: its assignments would go to
    /// a stream the agent no longer reads. Null: not fenced.
    /// </summary>
    public string? SessionId { get; init; }

    /// <summary>Refuses a claim id or session id that is empty, too long or uses other characters (INVALID_ARGUMENT).</summary>
    public void Validate()
    {
        Check(ClaimId, "claim_id", "make one per claim, e.g. Guid.NewGuid().ToString(\"N\")");
        Check(SessionId, "session_id", "pass the SessionId ConnectAgent returned");

        static void Check(string? id, string field, string hint)
        {
            if (id is null)
            {
                return;
            }

            if (id.Length is 0 or > MaxIdLength || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                throw RunStoreException.Invalid(field,
                    $"{field} '{(id.Length > MaxIdLength ? id[..MaxIdLength] + "..." : id)}' must be 1 to {MaxIdLength} letters, digits, '.', '_' or '-'; {hint}, or leave it unset");
            }
        }
    }
}
