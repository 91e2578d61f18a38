using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace ControlPlane.InteropServer.Internal;

/// <summary>The interop server's command line: --port=N (0 picks a free port) and --use_tls=false.</summary>
internal sealed record ServerArguments(int Port)
{
    public static bool TryParse(string[] args, [NotNullWhen(true)] out ServerArguments? arguments, [NotNullWhen(false)] out string? error)
    {
        arguments = null;
        int? port = null;
        for (var i = 0; i < args.Length; i++)
        {
            var (name, value) = Split(args, ref i);
            switch (name)
            {
                case "--port" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p <= 65535:
                    port = p;
                    break;
                case "--port":
                    error = $"--port: '{value}' is not a port number; pass --port=N with 0 <= N <= 65535 (0 picks a free port).";
                    return false;
                case "--use_tls" when string.Equals(value, "false", StringComparison.OrdinalIgnoreCase):
                    break;
                case "--use_tls":
                    error = "--use_tls: only plaintext h2c is supported; pass --use_tls=false or leave it out.";
                    return false;
                default:
                    error = $"unknown argument '{args[i]}'; usage: --port=N [--use_tls=false]";
                    return false;
            }
        }

        if (port is null)
        {
            error = "--port is required; pass --port=N (0 picks a free port).";
            return false;
        }

        arguments = new ServerArguments(port.Value);
        error = null;
        return true;
    }

    // Accepts both "--name=value" and "--name value".
    private static (string Name, string? Value) Split(string[] args, ref int i)
    {
        var arg = args[i];
        var eq = arg.IndexOf('=', StringComparison.Ordinal);
        if (eq >= 0)
        {
            return (arg[..eq], arg[(eq + 1)..]);
        }

        if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
        {
            i++;
            return (arg, args[i]);
        }

        return (arg, null);
    }
}
