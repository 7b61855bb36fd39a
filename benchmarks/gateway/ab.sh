#!/usr/bin/env bash
# An earlier Pilothouse against this checkout's, interleaved: both gateways run at once
# on the same CPU, in front of the harness's mock upstream (../shared/bench/gateway),
# and wrk alternates between them (and the upstream called directly) run by run, so
# that the load of a shared machine falls on both alike. Shows what a change cost the
# gateway: req/s, added p50 and CPU ms per request, side by side.
#
#   git archive REV src | tar -x -C /tmp/old
#   BEFORE_SRC=/tmp/old/src BEFORE_LABEL=REV bash benchmarks/gateway/ab.sh
#
# Knobs: DUR (per run, default 5s), REPS (5), CONCS ("1 16 64"), MODES ("json stream"),
# PIN_A/PIN_B (CPUs for upstream+wrk and for both gateways). Needs what run.sh needs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HARNESS=${HARNESS:-$(cd "$ROOT/../shared/bench/gateway" && pwd)}
: "${BEFORE_SRC:?set BEFORE_SRC to the src folder of the earlier Pilothouse}"
LABEL=${BEFORE_LABEL:-before}
WORK=${WORK:-${TMPDIR:-/tmp}/pilothouse-gateway-ab}
DUR=${DUR:-5s} REPS=${REPS:-5} CONCS=${CONCS:-"1 16 64"} MODES=${MODES:-"json stream"}
PIN_A=${PIN_A:-0} PIN_B=${PIN_B:-1}
PY=${PY:-$ROOT/.venv/bin/python}
UPSTREAM_PORT=8081
RUN="$WORK/run"
rm -rf "$WORK" && mkdir -p "$RUN/nginx-body" "$WORK/before" "$WORK/now"
TICK=$(getconf CLK_TCK)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

sed -e "s#@RUN@#$RUN#g" -e "s#@DIR@#$HARNESS#g" -e "s#@UPSTREAM_WORKERS@#1#" \
    -e "s#@UPSTREAM_PORT@#$UPSTREAM_PORT#" "$HARNESS/mock/nginx.conf.in" > "$RUN/nginx.conf"
taskset -c "$PIN_A" nginx -c "$RUN/nginx.conf" -p "$RUN" -e "$RUN/nginx-error.log"
sleep 1
curl -sf "http://127.0.0.1:$UPSTREAM_PORT/health" >/dev/null

start() { # name port src -> prints the server's pid; its key in $WORK/name.key
  local name=$1 port=$2 src=$3 home="$WORK/$1-home" env_src=()
  [ -n "$src" ] && env_src=("PYTHONPATH=$src")
  mkdir -p "$home"
  env PILOTHOUSE_HOME="$home" "${env_src[@]}" "$PY" -m pilothouse keys create --scope models \
    --name bench 2>/dev/null > "$WORK/$name.key"
  ( export PILOTHOUSE_HOME="$home" BENCH_UPSTREAM_KEY=sk-mock-upstream
    exec env "${env_src[@]}" taskset -c "$PIN_B" "$PY" -m pilothouse serve \
      --routes "$HERE/routes.yaml" --host 127.0.0.1 --port "$port" > "$WORK/$name.log" 2>&1 ) &
  echo $!
}
BEFORE_PID=$(start before 4002 "$BEFORE_SRC"); PIDS+=("$BEFORE_PID")
NOW_PID=$(start now 4001 ""); PIDS+=("$NOW_PID")
for port in 4001 4002; do
  for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "gateway on $port did not start"; exit 1; }
done

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HEAD="rep,target,mode,conc,requests,duration_us,p50_ms,p90_ms,p99_ms,mean_ms,max_ms,socket_errors,non2xx,proxy_cpu_ms,loadavg1"
echo "$HEAD" > "$WORK/before/raw.csv"; echo "$HEAD" > "$WORK/now/raw.csv"

measure() { # folder target(direct|proxy) port pid key mode conc rep
  local folder=$1 target=$2 port=$3 pid=$4 key=$5 mode=$6 c=$7 rep=$8 stream=0 before after line
  [ "$mode" = stream ] && stream=1
  before=$(ticks "$pid")
  line=$(STREAM=$stream API_KEY=$key taskset -c "$PIN_A" wrk -t1 -c"$c" -d"$DUR" --timeout 30s \
         -s "$HARNESS/wrk/chat.lua" "http://127.0.0.1:$port/v1/chat/completions" | grep '^CSV,')
  after=$(ticks "$pid")
  echo "$rep,$target,$mode,$c,${line#CSV,},$(( (after-before) * 1000 / TICK )),$(cut -d' ' -f1 /proc/loadavg)" \
    >> "$WORK/$folder/raw.csv"
}

KEY_B=$(cat "$WORK/before.key"); KEY_N=$(cat "$WORK/now.key")
for port_key in "4002 $KEY_B" "4001 $KEY_N"; do  # warm-up, not recorded
  set -- $port_key
  STREAM=0 API_KEY=$2 taskset -c "$PIN_A" wrk -t1 -c16 -d3s -s "$HARNESS/wrk/chat.lua" \
    "http://127.0.0.1:$1/v1/chat/completions" >/dev/null
done
for rep in $(seq 1 "$REPS"); do
  for mode in $MODES; do
    for c in $CONCS; do
      echo "rep=$rep mode=$mode c=$c"
      # the upstream alone, for "added p50"; recorded for both, measured once
      measure now direct "$UPSTREAM_PORT" "$NOW_PID" none "$mode" "$c" "$rep"
      tail -1 "$WORK/now/raw.csv" >> "$WORK/before/raw.csv"
      if [ $((rep % 2)) = 1 ]; then order="before now"; else order="now before"; fi
      for who in $order; do
        if [ "$who" = before ]; then
          measure before proxy 4002 "$BEFORE_PID" "$KEY_B" "$mode" "$c" "$rep"
        else
          measure now proxy 4001 "$NOW_PID" "$KEY_N" "$mode" "$c" "$rep"
        fi
      done
    done
  done
done

PYTHONPATH="$HERE" "$PY" -c "
import sys
from pathlib import Path
from compare import before_table, paired_table
work, label = Path(sys.argv[1]), sys.argv[2]
print(before_table(work / 'before', work / 'now', label))
print()
print(paired_table(work / 'before', work / 'now', label))
" "$WORK" "$LABEL" | tee "$WORK/ab.md"
