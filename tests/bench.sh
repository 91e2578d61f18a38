#!/usr/bin/env bash
# End-to-end benchmark, side by side with the BullMQ baseline on the same throwaway redis-server:
#   build Release -> start redis-server on a free loopback port -> cp-bench (scheduler host + K agent processes,
#   no-op dotnet steps) -> BullMQ baseline (copy of /work/shared/bench/baseline in a temp dir) -> ratios -> one JSON line.
# Usage: tests/bench.sh [cp-bench flags]         full sizes (200x100 fan-out, 2,000 parent+10, 10,000 wide)
#        BENCH_QUICK=1 tests/bench.sh            small sizes for a smoke run
#        BENCH_RUNS=3 tests/bench.sh             three invocations, then the medians (what BENCHMARKS.md reports)
# Env: BASELINE_DIR (default /work/shared/bench/baseline), BENCH_AGENTS (2), BENCH_SLOTS (64).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# BENCH_RUNS=3: that many whole invocations one after another, then one JSON line of per-figure medians.
if [[ ${BENCH_RUNS:-1} -gt 1 && -z ${BENCH_ONE:-} ]]; then
  LINES="$(mktemp /tmp/cp-bench-runs.XXXXXX)"
  trap 'rm -f "$LINES" "$LINES.one"' EXIT
  for i in $(seq "$BENCH_RUNS"); do
    echo "== invocation $i of $BENCH_RUNS"
    BENCH_ONE=1 "$0" "$@" | tee "$LINES.one"
    tail -1 "$LINES.one" >>"$LINES"
  done
  echo "== medians of $BENCH_RUNS invocations"
  node - "$LINES" <<'JS'
const fs = require('fs');
const runs = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map(l => JSON.parse(l));
const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const out = {};
for (const key of Object.keys(runs[0])) out[key] = median(runs.map(r => r[key]));
console.log(JSON.stringify(out));
JS
  exit 0
fi

BASELINE_DIR="${BASELINE_DIR:-/work/shared/bench/baseline}"
REDIS_SERVER="$(command -v redis-server || true)"
[[ -n $REDIS_SERVER ]] || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
command -v node >/dev/null || { echo "node missing: install Node.js 20 (apt-get install -y nodejs npm)" >&2; exit 1; }
[[ -f $BASELINE_DIR/bullmq_bench.mjs ]] || { echo "BullMQ baseline not found in $BASELINE_DIR; set BASELINE_DIR" >&2; exit 1; }

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  SIZES=(--fanout-runs 20 --fanout-width 100 --dag-runs 200 --dag-children 10 --wide-steps 2000 --seq-runs 100 --warmup-rounds 2 --paced-seconds 2)
  BULL_ENV=(NOOP_JOBS=2000 FLOWS=200 SEQ_JOBS=100)
else
  SIZES=()
  BULL_ENV=()
fi

WORK="$(mktemp -d /tmp/cp-bench.XXXXXX)"
REDIS_PID=""
cleanup() {
  # Stop only the redis-server this script started, by its pid.
  if [[ -n $REDIS_PID ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== build (Release)"
dotnet build src/ControlPlane.Scheduler.Host/ControlPlane.Scheduler.Host.csproj -c Release -nologo -v q >"$WORK/build.log" 2>&1 \
  && dotnet build tests/ControlPlane.Bench/ControlPlane.Bench.csproj -c Release -nologo -v q >>"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; exit 1; }

PORT="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$REDIS_SERVER" --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no \
  --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && [[ -s $WORK/redis.pid ]] && break; sleep 0.1; done
REDIS_PID="$(cat "$WORK/redis.pid")"
echo "== redis $(redis-server --version | grep -o 'v=[^ ]*') pid $REDIS_PID on 127.0.0.1:$PORT; nproc=$(nproc)"

echo "== ControlPlane: scheduler host + ${BENCH_AGENTS:-2} agent processes, no-op dotnet steps"
dotnet tests/ControlPlane.Bench/bin/Release/net10.0/cp-bench.dll --redis "127.0.0.1:$PORT" \
  --agents "${BENCH_AGENTS:-2}" --slots "${BENCH_SLOTS:-64}" "${SIZES[@]}" --json-out "$WORK/ours.json" "$@" 2>"$WORK/ours.err" \
  || { tail -50 "$WORK/ours.err" >&2; exit 1; }

echo "== BullMQ baseline on the same redis-server (emptied first, so neither side works next to the other's data)"
redis-cli -h 127.0.0.1 -p "$PORT" flushall >/dev/null
cp -r "$BASELINE_DIR" "$WORK/baseline"
rm -rf "$WORK/baseline/node_modules" "$WORK/baseline/runs"
(cd "$WORK/baseline" && npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) || { cat "$WORK/npm.log" >&2; exit 1; }
(cd "$WORK/baseline" && env "${BULL_ENV[@]}" REDIS_URL="redis://127.0.0.1:$PORT" timeout 600 node bullmq_bench.mjs) \
  >"$WORK/bullmq.out" 2>"$WORK/bullmq.err" || { tail -30 "$WORK/bullmq.err" >&2; exit 1; }
grep '^\[bench\]' "$WORK/bullmq.err" || true

node - "$WORK/ours.json" "$WORK/bullmq.out" <<'JS'
const fs = require('fs');
const ours = JSON.parse(fs.readFileSync(process.argv[2], 'utf8').trim());
const bullLines = fs.readFileSync(process.argv[3], 'utf8').trim().split('\n');
const bull = JSON.parse(bullLines[bullLines.length - 1]);
if (bull.error) { console.error(`BullMQ baseline failed: ${bull.error}`); process.exit(1); }
const r = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const out = {
  noop_steps_per_s: ours.noop_steps_per_s,
  bullmq_noop_jobs_per_s: bull.noop.jobs_per_s,
  noop_ratio: r(ours.noop_steps_per_s / bull.noop.jobs_per_s),
  dag_steps_per_s: ours.dag_steps_per_s,
  bullmq_flow_jobs_per_s: bull.flow.jobs_per_s,
  dag_ratio: r(ours.dag_steps_per_s / bull.flow.jobs_per_s),
  wide_steps_per_s: ours.wide_steps_per_s,
  seq_p50_ms: ours.seq_p50_ms,
  seq_p99_ms: ours.seq_p99_ms,
  bullmq_seq_p50_ms: bull.sequential.rt_ms.p50,
  bullmq_seq_p99_ms: bull.sequential.rt_ms.p99,
  seq_p50_ratio: r(ours.seq_p50_ms / bull.sequential.rt_ms.p50),
  dispatch_p50_ms: ours.dispatch_p50_ms,
  dispatch_p99_ms: ours.dispatch_p99_ms,
  dispatch_load50_steps_per_s: ours.dispatch_load50_steps_per_s,
  dispatch_p50_ms_at_90: ours.dispatch_p50_ms_at_90,
  dispatch_p99_ms_at_90: ours.dispatch_p99_ms_at_90,
  dispatch_load90_steps_per_s: ours.dispatch_load90_steps_per_s,
  idle_dispatch_p50_ms: ours.idle_dispatch_p50_ms,
  idle_dispatch_p99_ms: ours.idle_dispatch_p99_ms,
  burst_dispatch_p50_ms: ours.burst_dispatch_p50_ms,
  burst_dispatch_p99_ms: ours.burst_dispatch_p99_ms,
  bullmq_burst_dispatch_p50_ms: bull.noop.latency_ms.p50,
  bullmq_burst_dispatch_p99_ms: bull.noop.latency_ms.p99,
  redis_roundtrips_per_step: ours.redis_roundtrips_per_step,
  redis_commands_per_step: ours.redis_commands_per_step,
  bullmq_redis_roundtrips_per_job: bull.noop.redis_cmds.top_level_per_job,
  bullmq_redis_commands_per_job: bull.noop.redis_cmds.total_per_job,
  scheduler_cpu_s_per_1000_steps: ours.scheduler_cpu_s_per_1000_steps,
  agents_cpu_s_per_1000_steps: ours.agents_cpu_s_per_1000_steps,
  redis_cpu_s_per_1000_steps: ours.redis_cpu_s_per_1000_steps,
  scheduler_peak_rss_mib: ours.scheduler_peak_rss_mib,
  agent_peak_rss_mib: ours.agent_peak_rss_mib,
  worst_validation_ms: ours.worst_validation_ms,
};
console.log(`== ratios ours/BullMQ: no-op ${out.noop_ratio}x (${out.noop_steps_per_s} vs ${out.bullmq_noop_jobs_per_s}/s), ` +
  `DAG ${out.dag_ratio}x (${out.dag_steps_per_s} vs ${out.bullmq_flow_jobs_per_s}/s), ` +
  `sequential p50 ${out.seq_p50_ratio}x (${out.seq_p50_ms} vs ${out.bullmq_seq_p50_ms} ms)`);
const check = (name, ok, detail) => console.log(`== target ${name}: ${ok ? 'met' : 'MISSED'} (${detail})`);
check('no-op ratio >= 1.0', out.noop_ratio >= 1, `${out.noop_ratio}`);
check('DAG ratio >= 1.0', out.dag_ratio >= 1, `${out.dag_ratio}`);
check('sequential p99 <= BullMQ', out.seq_p99_ms <= out.bullmq_seq_p99_ms, `${out.seq_p99_ms} vs ${out.bullmq_seq_p99_ms} ms`);
check('dispatch p99 <= 5 ms at 50 % load', out.dispatch_p99_ms <= 5, `${out.dispatch_p99_ms} ms at ${out.dispatch_load50_steps_per_s} steps/s`);
check('Redis round trips per step <= 2', out.redis_roundtrips_per_step <= 2, `${out.redis_roundtrips_per_step}`);
check('worst-case validation <= 50 ms', out.worst_validation_ms <= 50, `${out.worst_validation_ms} ms`);
console.log(JSON.stringify(out));
JS
