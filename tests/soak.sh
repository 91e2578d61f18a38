#!/usr/bin/env bash
# The chaos soak: a private redis-server with AOF (appendfsync everysec), two scheduler replicas, three agents (one
# through a TCP proxy that cuts and blackholes its connection), a continuous mix of pipelines and seeded random faults;
# then the invariants, with figures. Exits non-zero when one is violated, listing each violation with its run and step.
# Usage: tests/soak.sh [--minutes N] [--seed S] [--check-memory] [--retention SECONDS] [--keep] [--faults KIND,...] [--no-build]
#   --no-build   use the Release binaries as they are (tests/run.sh has just built the solution)
# The soak's directory (each process's log, the driver's journal soak.log, the step ledger) is printed at the end and
# kept when an invariant is violated.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

build=1
args=()
for arg in "$@"; do
  if [ "$arg" = "--no-build" ]; then build=0; else args+=("$arg"); fi
done

command -v redis-server >/dev/null 2>&1 || { echo "soak.sh: redis-server is missing; install it: apt-get install -y redis-server" >&2; exit 2; }

driver=tests/ControlPlane.Soak/bin/Release/net10.0/cp-soak
if [ "$build" -eq 1 ] || [ ! -x "$driver" ]; then
  # Builds the driver and the scheduler and agent hosts it starts; quick when they are up to date.
  dotnet build tests/ControlPlane.Soak -c Release -nologo -v:q -clp:ErrorsOnly
fi

exec "$driver" "${args[@]}"
