#!/usr/bin/env bash
# Pilothouse's gateway mode against the LiteLLM proxy on the shared harness
# (../shared/bench/gateway): same mock upstream, same machine, same pinning, one worker
# each, one run. Writes the side-by-side table into benchmarks/README.md ("Gateway").
#
#   bash benchmarks/gateway/run.sh                # harness defaults (~10 min per gateway)
#   DUR=5s REPS=1 bash benchmarks/gateway/run.sh  # quick check
#
# Needs: apt-get install -y wrk nginx-light libnginx-mod-http-lua
# LiteLLM is installed by the harness into a throwaway venv under $WORK, never into the
# project's .venv, and is never a project dependency.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HARNESS=${HARNESS:-$(cd "$ROOT/../shared/bench/gateway" && pwd)}
export WORK=${WORK:-${TMPDIR:-/tmp}/pilothouse-gateway-bench}
export DUR=${DUR:-10s} REPS=${REPS:-3} CONCS=${CONCS:-"1 16 64"} MODES=${MODES:-"json stream"}
export PIN_A=${PIN_A:-0} PIN_B=${PIN_B:-1}
PY=${PY:-$ROOT/.venv/bin/python}
PORT=${PILOTHOUSE_PORT:-4001}
WRITE_README=${WRITE_README:-1}
mkdir -p "$WORK"

echo "== 1/3 LiteLLM proxy (harness default gateway)"
OUT="$WORK/litellm" bash "$HARNESS/run.sh"

echo "== 2/3 Pilothouse gateway mode"
HOME_DIR="$WORK/pilothouse-home"
rm -rf "$HOME_DIR" && mkdir -p "$HOME_DIR"
KEY=$(PILOTHOUSE_HOME="$HOME_DIR" "$PY" -m pilothouse keys create --scope models --name bench 2>/dev/null)
PIN=()
[ -n "$PIN_B" ] && PIN=(taskset -c "$PIN_B")
# exec: $! is the server's own pid (measured by the harness, stopped below)
( export PILOTHOUSE_HOME="$HOME_DIR" BENCH_UPSTREAM_KEY=sk-mock-upstream
  exec "${PIN[@]}" "$PY" -m pilothouse serve --routes "$HERE/routes.yaml" --host 127.0.0.1 \
    --port "$PORT" 2> "$WORK/pilothouse.log" ) &
PH_PID=$!
trap 'kill "$PH_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "pilothouse did not start"; tail -20 "$WORK/pilothouse.log"; exit 1; }
GATEWAY_PID=$PH_PID PROXY_PORT=$PORT API_KEY=$KEY OUT="$WORK/pilothouse" bash "$HARNESS/run.sh"
kill -TERM "$PH_PID"; wait "$PH_PID" 2>/dev/null || true
trap - EXIT

echo "== 3/3 side by side"
ARGS=("$WORK/litellm" "$WORK/pilothouse")
[ "$WRITE_README" = 1 ] && ARGS+=(--readme "$ROOT/benchmarks/README.md")
"$PY" "$HERE/compare.py" "${ARGS[@]}" | tee "$WORK/comparison.md"
