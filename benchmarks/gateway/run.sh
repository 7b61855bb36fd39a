#!/usr/bin/env bash
# Pilothouse's gateway mode against the LiteLLM proxy on the shared harness
# (../shared/bench/gateway): same mock upstream, same machine, same pinning, one worker
# each, one run. Writes the side-by-side table into benchmarks/README.md ("Gateway").
#
#   bash benchmarks/gateway/run.sh                # harness defaults (~10 min per gateway)
#   DUR=5s REPS=1 bash benchmarks/gateway/run.sh  # quick check
#   BEFORE_SRC=/tmp/old/src BEFORE_LABEL=3b6b54f bash benchmarks/gateway/run.sh
#                                                 # also an earlier Pilothouse, same run
#
# Needs: apt-get install -y wrk nginx-light libnginx-mod-http-lua
# LiteLLM is installed by the harness into a throwaway venv under $WORK, never into the
# project's .venv, and is never a project dependency.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# ../shared from a checkout in /work, ../../shared from a worktree one level further down
HARNESS=${HARNESS:-$(cd "$ROOT/../shared/bench/gateway" 2>/dev/null || cd "$ROOT/../../shared/bench/gateway" && pwd)}
export WORK=${WORK:-${TMPDIR:-/tmp}/pilothouse-gateway-bench}
export DUR=${DUR:-10s} REPS=${REPS:-3} CONCS=${CONCS:-"1 16 64"} MODES=${MODES:-"json stream"}
export PIN_A=${PIN_A:-0} PIN_B=${PIN_B:-1}
PY=${PY:-$ROOT/.venv/bin/python}
PORT=${PILOTHOUSE_PORT:-4001}
WRITE_README=${WRITE_README:-1}
mkdir -p "$WORK"

echo "== 1/3 LiteLLM proxy (harness default gateway)"
OUT="$WORK/litellm" bash "$HARNESS/run.sh"

# One Pilothouse gateway measured on the harness: $1 names the results folder, $2 (optional)
# a source tree of an earlier Pilothouse to measure instead of this checkout's.
measure_pilothouse() {
  local name=$1 src=${2:-}
  local home_dir="$WORK/$name-home" key
  rm -rf "$home_dir" && mkdir -p "$home_dir"
  local env_src=()
  [ -n "$src" ] && env_src=("PYTHONPATH=$src")
  key=$(env PILOTHOUSE_HOME="$home_dir" "${env_src[@]}" "$PY" -m pilothouse keys create --scope models --name bench 2>/dev/null)
  local pin=()
  [ -n "$PIN_B" ] && pin=(taskset -c "$PIN_B")
  # exec: $! is the server's own pid (measured by the harness, stopped below)
  ( export PILOTHOUSE_HOME="$home_dir" BENCH_UPSTREAM_KEY=sk-mock-upstream
    exec env "${env_src[@]}" "${pin[@]}" "$PY" -m pilothouse serve --routes "$HERE/routes.yaml" --host 127.0.0.1 \
      --port "$PORT" 2> "$WORK/$name.log" ) &
  PH_PID=$!
  trap 'kill "$PH_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "pilothouse did not start"; tail -20 "$WORK/$name.log"; exit 1; }
  GATEWAY_PID=$PH_PID PROXY_PORT=$PORT API_KEY=$key OUT="$WORK/$name" bash "$HARNESS/run.sh"
  kill -TERM "$PH_PID"; wait "$PH_PID" 2>/dev/null || true
  trap - EXIT
}

if [ -n "${BEFORE_SRC:-}" ]; then
  # An earlier Pilothouse (e.g. `git archive REV src | tar -x -C DIR`, BEFORE_SRC=DIR/src)
  # in the same run, to show what a change cost the gateway.
  echo "== 2a/3 Pilothouse gateway mode, before ($BEFORE_SRC)"
  measure_pilothouse pilothouse-before "$BEFORE_SRC"
fi
echo "== 2/3 Pilothouse gateway mode"
measure_pilothouse pilothouse

echo "== 3/3 side by side"
ARGS=("$WORK/litellm" "$WORK/pilothouse")
[ -n "${BEFORE_SRC:-}" ] && ARGS+=(--before "$WORK/pilothouse-before" --before-label "${BEFORE_LABEL:-before}")
[ "$WRITE_README" = 1 ] && ARGS+=(--readme "$ROOT/benchmarks/README.md")
"$PY" "$HERE/compare.py" "${ARGS[@]}" | tee "$WORK/comparison.md"
