#!/usr/bin/env bash
# Where the JSON-at-concurrency-1 row's stalls come from: wrk -c1 against, in turn, the
# mock upstream directly, a trivial uvicorn app (trivial.py), and three Pilothouse gateways
# (serve_timed.py: collector as on main / start-up frozen / collector off), every
# collection timed with gc.callbacks after the warm-up. wrk + nginx on CPU 0, the servers
# on CPU 1, interleaved per repetition. Run it with /tmp/prio.sh under the measurement lock:
#   HARNESS=/work/shared/bench/gateway DUR=5s REPS=4 bash benchmarks/gateway/stalls/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); WT=$(cd "$HERE/../../.." && pwd)
H=${HARNESS:-$WT/../shared/bench/gateway}; W=${WORK:-/tmp/pilothouse-gateway-stalls}; RUN=$W/run
rm -rf "$W"; mkdir -p $RUN/nginx-body
PY=${PY:-$WT/.venv/bin/python}
DUR=${DUR:-5s}; REPS=${REPS:-3}
sed -e "s#@RUN@#$RUN#g" -e "s#@DIR@#$H#g" -e "s#@UPSTREAM_WORKERS@#1#" -e "s#@UPSTREAM_PORT@#8081#" $H/mock/nginx.conf.in > $RUN/nginx.conf
taskset -c 0 nginx -c $RUN/nginx.conf -p $RUN -e $RUN/nginx-error.log; sleep 1
curl -sf -X POST http://127.0.0.1:8081/v1/chat/completions -d '{}' > $W/body.json
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; kill $(cat $RUN/nginx.pid) 2>/dev/null || true; }
trap cleanup EXIT
export PILOTHOUSE_HOME=$W/home BENCH_UPSTREAM_KEY=sk-mock-upstream
mkdir -p $PILOTHOUSE_HOME
KEY=$($PY -m pilothouse keys create --scope models --name bench 2>/dev/null)
( cd "$HERE" && BODY_FILE=$W/body.json exec taskset -c 1 $PY -m uvicorn trivial:app --host 127.0.0.1 --port 4011 --loop uvloop --http httptools --no-access-log --log-level warning ) & PIDS+=($!)
( DIAG_GC=unfreeze DIAG_OUT=$W/gc_main.json exec taskset -c 1 $PY $HERE/serve_timed.py serve --routes $WT/benchmarks/gateway/routes.yaml --port 4014 2>$W/ph_main.log ) & PIDS+=($!); PH_MAIN=$!
( DIAG_GC=on DIAG_OUT=$W/gc_on.json exec taskset -c 1 $PY $HERE/serve_timed.py serve --routes $WT/benchmarks/gateway/routes.yaml --port 4012 2>$W/ph_on.log ) & PIDS+=($!); PH_ON=$!
( DIAG_GC=off DIAG_OUT=$W/gc_off.json exec taskset -c 1 $PY $HERE/serve_timed.py serve --routes $WT/benchmarks/gateway/routes.yaml --port 4013 2>$W/ph_off.log ) & PIDS+=($!); PH_OFF=$!
for port in 4011 4012 4013 4014; do for _ in $(seq 1 60); do curl -sf http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; [ $port = 4011 ] && curl -sf -X POST http://127.0.0.1:4011/ >/dev/null 2>&1 && break; sleep 0.5; done; done
URL=/v1/chat/completions
for port in 4012 4013 4014; do STREAM=0 API_KEY=$KEY taskset -c 0 wrk -t1 -c16 -d3s -s $H/wrk/chat.lua http://127.0.0.1:$port$URL >/dev/null; done
kill -USR2 $PH_ON $PH_OFF $PH_MAIN
echo "rep,target,requests,duration_us,p50_ms,p90_ms,p99_ms,mean_ms,max_ms,errs,non2xx,load1" > $W/raw.csv
for rep in $(seq 1 $REPS); do
  for t in direct:8081 trivial:4011 ph_main:4014 ph_frozen:4012 ph_gc_off:4013; do
    name=${t%%:*}; port=${t##*:}
    line=$(STREAM=0 API_KEY=$KEY taskset -c 0 wrk -t1 -c1 -d$DUR --timeout 30s -s $H/wrk/chat.lua http://127.0.0.1:$port$URL | grep '^CSV,')
    echo "$rep,$name,${line#CSV,},$(cut -d' ' -f1 /proc/loadavg)" >> $W/raw.csv
  done
done
kill -USR1 $PH_ON $PH_OFF $PH_MAIN; sleep 1
column -s, -t $W/raw.csv; cat $W/gc_main.json; echo; cat $W/gc_on.json; echo; cat $W/gc_off.json; echo
