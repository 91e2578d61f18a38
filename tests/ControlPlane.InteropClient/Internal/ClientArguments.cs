using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace ControlPlane.InteropClient.Internal;

/// <summary>The standard interop client flags (plaintext only).</summary>
internal sealed record ClientArguments(string ServerHost, int ServerPort, string TestCase)
{
    public static bool TryParse(string[] args, [NotNullWhen(true)] out ClientArguments? arguments, [NotNullWhen(false)] out string? error)
    {
        arguments = null;
        var host = "127.0.0.1";
        int? port = null;
        string? testCase = null;
        foreach (var arg in args)
        {
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var (name, value) = eq < 0 ? (arg, string.Empty) : (arg[..eq], arg[(eq + 1)..]);
            switch (name)
            {
                case "--server_host":
                    host = value;
                    break;
                case "--server_host_override":
                case "--use_test_ca":
                    // Only meaningful with TLS, which this client does not speak.
                    break;
                case "--server_port" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and <= 65535:
                    port = p;
                    break;
                case "--server_port":
                    error = $"--server_port: '{value}' is not a port number; pass --server_port=N with 1 <= N <= 65535.";
                    return false;
                case "--test_case" when InteropCases.Names.Contains(value):
                    testCase = value;
                    break;
                case "--test_case":
                    error = $"--test_case: unknown case '{value}'; use one of: {string.Join(", ", InteropCases.Names)}.";
                    return false;
                case "--use_tls" when string.Equals(value, "false", StringComparison.OrdinalIgnoreCase):
                    break;
                case "--use_tls":
                    error = "--use_tls: only plaintext h2c is supported; pass --use_tls=false or leave it out.";
                    return false;
                default:
                    error = $"unknown argument '{arg}'; usage: --server_host=HOST --server_port=N --test_case=NAME [--use_tls=false]";
                    return false;
            }
        }

        if (port is null || testCase is null)
        {
            error = "--server_port=N and --test_case=NAME are required.";
            return false;
        }

        arguments = new ClientArguments(host, port.Value, testCase);
        error = null;
        return true;
    }
}
