using System.Security.Claims;
using System.Text.RegularExpressions;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Which namespace a call acts in. A token of one namespace acts in that namespace alone; a token of every namespace
/// ("*": admin, operator) and any call to a scheduler with authentication off act in the one the <c>cp-namespace</c>
/// header names, else in the scheduler's default namespace.
/// </summary>
public static partial class CallNamespace
{
    /// <summary>The request header naming the namespace a call acts in.</summary>
    public const string Header = "cp-namespace";

    /// <summary>What a namespace name must match.</summary>
    public const string PatternText = "[a-z0-9][a-z0-9._-]{0,62}";

    /// <summary>Whether <paramref name="name"/> is a namespace name (not "*").</summary>
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>The namespace of <paramref name="user"/>'s token: a name, "*", or null when the call was not authenticated.</summary>
    public static string? TokenNamespaceOf(ClaimsPrincipal? user) => user?.FindFirst(CallerClaims.Namespace)?.Value;

    /// <summary>
    /// Why a caller whose token belongs to <paramref name="tokenNamespace"/> may not act in <paramref name="requested"/>,
    /// or null when it may.
    /// </summary>
    public static string? Refusal(string? tokenName, string? tokenNamespace, string? requested)
    {
        if (requested is null || tokenNamespace is null || tokenNamespace == CallerClaims.AnyNamespace || tokenNamespace == requested)
        {
            return null;
        }

        return $"the token '{tokenName}' belongs to namespace '{tokenNamespace}' and cannot act in namespace '{Shorten(requested)}'; "
            + $"drop the {Header} header (cpctl: --namespace, CP_NAMESPACE) to act in '{tokenNamespace}', or use a token of '{Shorten(requested)}'";
    }

    internal static string Shorten(string text) => text.Length <= 70 ? text : text[..70] + "...";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
