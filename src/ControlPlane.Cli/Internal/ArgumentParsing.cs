using System.Globalization;
using System.Net;
using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary>Option values cpctl parses itself, each failing with a message that names the option and shows a good value.</summary>
internal static class ArgumentParsing
{
    /// <summary>Labels from repeated and/or comma-separated <c>k=v</c> values.</summary>
    public static Dictionary<string, string> Labels(IEnumerable<string>? values, string optionName)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new CliUsageException($"{optionName} '{item}' is not key=value; use e.g. {optionName} team=vision");
            }

            labels[item[..equals]] = item[(equals + 1)..];
        }

        return labels;
    }

    /// <summary>A run state by name: running, RUNNING or RUN_STATE_RUNNING.</summary>
    public static RunState State(string text)
    {
        var name = text.Trim().ToUpperInvariant().Replace('-', '_');
        if (name.StartsWith("RUN_STATE_", StringComparison.Ordinal))
        {
            name = name["RUN_STATE_".Length..];
        }

        foreach (var state in Enum.GetValues<RunState>().Where(s => s != RunState.Unspecified))
        {
            if (TextRender.Name(state) == name)
            {
                return state;
            }
        }

        var known = string.Join(", ", Enum.GetValues<RunState>().Where(s => s != RunState.Unspecified).Select(s => TextRender.Name(s).ToLowerInvariant()));
        throw new CliUsageException($"--state '{text}' is not a run state; use one of {known}");
    }

    /// <summary>HOST:PORT where HOST is an IP address, "localhost" or "*" (every interface).</summary>
    public static IPEndPoint Endpoint(string text, string optionName)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new CliUsageException($"{optionName} '{text}' is not HOST:PORT; use e.g. {optionName} 127.0.0.1:7070");
        }

        var host = text[..colon].Trim('[', ']');
        IPAddress? address = host switch
        {
            "localhost" => IPAddress.Loopback,
            "*" or "+" => IPAddress.Any,
            _ => IPAddress.TryParse(host, out var parsed) ? parsed : null,
        };
        return address is null
            ? throw new CliUsageException($"{optionName} host '{host}' is not an IP address; use an address such as 127.0.0.1 or 0.0.0.0, or localhost")
            : new IPEndPoint(address, port);
    }
}
