#!/usr/bin/env bash
# Runs every test in the solution: one build, then each test project in turn, with its counts and
# wall time as it finishes, then a two-minute chaos soak (tests/soak.sh). On a fresh Debian machine,
# run as root, it first installs what the suite needs; run as another user, it prints the command
# that installs it and stops.
# Exits non-zero when a test fails, when no test ran or when the soak finds a violated invariant; ends with
# "N passed, N failed, N skipped".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
started=$SECONDS

# "33 s", "3 min 58 s".
duration() {
  local s=$1
  if [ "$s" -lt 60 ]; then echo "$s s"; else echo "$((s / 60)) min $((s % 60)) s"; fi
}

# ---- 1. Prerequisites -------------------------------------------------------------------------
# Debian packages: a real Redis for the store and functional tests; for the Python and Node hello
# clients (tests/ControlPlane.ClientInterop.Tests), Debian's python3 (not a virtualenv's) with grpcio,
# protobuf and grpc_tools, and node. The npm packages serve the Node client and buf lint. The dashboard's
# browser tests drive Debian's chromium (Playwright never downloads a browser).
apt_missing=()
command -v redis-server >/dev/null 2>&1 || apt_missing+=(redis-server)
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || apt_missing+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || apt_missing+=(python3-protobuf)
/usr/bin/python3 -c 'import grpc_tools.protoc' >/dev/null 2>&1 || apt_missing+=(python3-grpc-tools)
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_missing+=(npm)

npm_missing=0
for pkg in @grpc/grpc-js @grpc/proto-loader @bufbuild/buf; do
  [ -f "tests/node_modules/$pkg/package.json" ] || npm_missing=1
done

if [ ${#apt_missing[@]} -gt 0 ] || [ $npm_missing -eq 1 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    if [ ${#apt_missing[@]} -gt 0 ]; then
      echo "run.sh: installing ${apt_missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
    fi
    if [ $npm_missing -eq 1 ]; then
      echo "run.sh: installing the test suite's npm packages (tests/package-lock.json)"
      # npm ci refuses this lock file (npm 11 leaves other platforms' optional buf binaries out of it);
      # install reads the same pinned versions from it without rewriting it.
      (cd tests && npm install --no-save --no-audit --no-fund --loglevel=error)
    fi
  else
    echo "run.sh: missing prerequisites. Install them with:" >&2
    [ ${#apt_missing[@]} -gt 0 ] && echo "  sudo apt-get update && sudo apt-get install -y ${apt_missing[*]}" >&2
    [ $npm_missing -eq 1 ] && echo "  (cd $root/tests && npm install --no-save)" >&2
    exit 2
  fi
fi

# ---- 2. Build once ------------------------------------------------------------------------------
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
echo "run.sh: dotnet build"
build_started=$SECONDS
dotnet build ControlPlane.sln -c Release -nologo -v:q -clp:ErrorsOnly
echo "run.sh: built in $(duration $((SECONDS - build_started)))"

# ---- 3. Proto lint ------------------------------------------------------------------------------
# The services' HTTP routes import google/api/annotations.proto. buf resolves it from the googleapis protos of the
# Google.Api.CommonProtos package the build restored (no registry is reachable offline), as a second module of a
# workspace that holds buf.yaml's own rules and leaves googleapis itself unlinted.
echo "run.sh: buf lint"
googleapis=$(dotnet msbuild src/ControlPlane.Protos/ControlPlane.Protos.csproj -nologo -getProperty:GoogleApiCommonProtos_ProtosPath)
[ -f "$googleapis/google/api/annotations.proto" ] || { echo "run.sh: google/api/annotations.proto not found under '$googleapis'" >&2; exit 1; }
lint_workspace=$(mktemp -d)
ln -s "$root/protos" "$lint_workspace/protos"
mkdir -p "$lint_workspace/googleapis/google"
ln -s "$googleapis/google/api" "$lint_workspace/googleapis/google/api"
sed -e 's|^  - path: protos$|  - path: protos\n  - path: googleapis|' -e 's|^  ignore:$|  ignore:\n    - googleapis|' buf.yaml >"$lint_workspace/buf.yaml"
(cd "$lint_workspace" && "$root/tests/node_modules/.bin/buf" lint)
rm -rf "$lint_workspace"

# ---- 4. Run each test project in turn -----------------------------------------------------------

mapfile -t projects < <(grep -l '<IsTestProject>true</IsTestProject>' tests/*/*.csproj | sort)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 skipped=0 status=0
for project in "${projects[@]}"; do
  name=$(basename "$project" .csproj)
  project_started=$SECONDS
  set +e
  dotnet test "$project" -c Release --no-build -nologo \
    --logger "console;verbosity=minimal" \
    --blame-hang-timeout 10m >"$log" 2>&1
  project_status=$?
  set -e

  # The assembly's summary: "Passed!  - Failed: 0, Passed: 12, Skipped: 0, ...".
  read -r p f s < <(grep -E '(Passed|Failed)! +- +Failed: ' "$log" | awk -F'[:,]' '
    { f += $2; p += $4; s += $6 } END { printf "%d %d %d\n", p, f, s }')
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if [ "$project_status" -ne 0 ] || [ "$f" -ne 0 ]; then
    status=1
    cat "$log"
  fi
  printf 'run.sh: %-36s %4d passed, %d failed%s  (%s)\n' "$name" "$p" "$f" \
    "$([ "$s" -ne 0 ] && echo ", $s skipped")" "$(duration $((SECONDS - project_started)))"
done

# ---- 5. Chaos soak ----------------------------------------------------------------------------
# Two minutes of pipelines under seeded random faults (tests/soak.sh), then its invariants; a violated one fails the suite.
soak_started=$SECONDS
set +e
tests/soak.sh --no-build --minutes 2 >"$log" 2>&1
soak_status=$?
set -e
soak_seed=$(sed -n 's/^soak: seed \([-0-9]*\),.*/\1/p' "$log" | head -1)
soak_runs=$(sed -n 's/^runs: *\([0-9]*\) submitted.*/\1/p' "$log")
soak_faults=$(sed -n 's/^faults: *\([0-9]*\) .*/\1/p' "$log")
if [ "$soak_status" -ne 0 ]; then
  status=1
  cat "$log"
fi
printf 'run.sh: %-36s %s runs, %s faults, %s  (%s)\n' "soak (seed ${soak_seed:-?})" "${soak_runs:-0}" "${soak_faults:-0}" \
  "$([ "$soak_status" -eq 0 ] && echo "every invariant holds" || echo "FAILED")" "$(duration $((SECONDS - soak_started)))"

echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped  (total $(duration $((SECONDS - started))))"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
if [ "$passed" -eq 0 ]; then
  echo "run.sh: no test ran" >&2
  exit 1
fi
