using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace ControlPlane.Rpc.Benchmarks.Internal;

/// <summary>Benchmark settings; every flag is --name=value.</summary>
internal sealed record BenchArguments(int Rounds, double DurationSeconds, double WarmupSeconds, int PayloadBytes, int[] Callers, bool GrpcJsClient)
{
    public static bool TryParse(string[] args, [NotNullWhen(true)] out BenchArguments? arguments, [NotNullWhen(false)] out string? error)
    {
        arguments = new BenchArguments(5, 3, 1, 100, [1, 64], true);
        error = null;
        foreach (var arg in args)
        {
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                error = $"argument '{arg}' is not --name=value; flags: --rounds --duration --warmup --payload --callers --grpc-js-client";
                arguments = null;
                return false;
            }

            var (name, value) = (arg[..eq], arg[(eq + 1)..]);
            var inv = CultureInfo.InvariantCulture;
            switch (name)
            {
                case "--rounds" when int.TryParse(value, inv, out var r) && r >= 1:
                    arguments = arguments with { Rounds = r };
                    break;
                case "--duration" when double.TryParse(value, inv, out var d) && d > 0:
                    arguments = arguments with { DurationSeconds = d };
                    break;
                case "--warmup" when double.TryParse(value, inv, out var w) && w >= 0:
                    arguments = arguments with { WarmupSeconds = w };
                    break;
                case "--payload" when int.TryParse(value, inv, out var p) && p >= 0:
                    arguments = arguments with { PayloadBytes = p };
                    break;
                case "--callers":
                    var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries);
                    var callers = new int[parts.Length];
                    for (var i = 0; i < parts.Length; i++)
                    {
                        if (!int.TryParse(parts[i], inv, out callers[i]) || callers[i] < 1)
                        {
                            error = $"--callers: '{value}' must be a comma-separated list of positive integers, e.g. --callers=1,64";
                            arguments = null;
                            return false;
                        }
                    }

                    arguments = arguments with { Callers = callers };
                    break;
                case "--grpc-js-client" when bool.TryParse(value, out var j):
                    arguments = arguments with { GrpcJsClient = j };
                    break;
                default:
                    error = $"{name}: invalid value '{value}' (rounds >= 1, duration > 0 s, warmup >= 0 s, payload >= 0 bytes, callers like 1,64, grpc-js-client true|false)";
                    arguments = null;
                    return false;
            }
        }

        return true;
    }
}
