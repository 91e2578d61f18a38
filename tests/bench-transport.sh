#!/usr/bin/env bash
# Transport benchmark (not a test): ControlPlane.Rpc's client against ControlPlane.Rpc's server
# and against a @grpc/grpc-js server (plus the grpc-js client against both), over loopback,
# unary calls/s and duplex ping-pong messages/s with 1 and 64 callers, several rounds.
# Prints a side-by-side table of medians with the ratio ours/grpc-js, then one JSON line.
# Extra arguments go to the benchmark, e.g.: tests/bench-transport.sh --rounds=7 --duration=5
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

command -v node >/dev/null 2>&1 || { echo "bench-transport.sh: node is missing; install it: apt-get install -y nodejs npm" >&2; exit 2; }
for pkg in @grpc/grpc-js @grpc/proto-loader; do
  if [ ! -f "tests/node_modules/$pkg/package.json" ]; then
    echo "bench-transport.sh: tests/node_modules/$pkg is missing; install it: (cd $root/tests && npm ci)" >&2
    exit 2
  fi
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build tests/ControlPlane.Rpc.Benchmarks/ControlPlane.Rpc.Benchmarks.csproj -c Release -nologo -v:q -clp:ErrorsOnly >&2
exec dotnet tests/ControlPlane.Rpc.Benchmarks/bin/Release/net10.0/ControlPlane.Rpc.Benchmarks.dll "$@"
