#!/usr/bin/env bash
# The data loop end to end, on loopback, against the upstream and fine-tuning simulator:
# simulator, gateway, classify, corrections, export, fine-tune, register, deploy as a
# candidate, eval, promote, rollback. The same commands as the README's "The whole loop"
# section, with free ports and a temporary data directory (deleted at the end). Every process
# it starts is stopped on any exit; it exits non-zero on the first step that fails.
#
#   bash examples/data-loop.sh                 # or: make data-loop
#   TRIAGE_GATEWAY=triage-gateway bash examples/data-loop.sh   # the command on PATH
set -euo pipefail
cd "$(dirname "$0")/.."

TG=${TRIAGE_GATEWAY:-.venv/bin/triage-gateway}
PY=${PYTHON:-python3}   # standard library only: free ports, examples/review_traffic.py
REVIEWS=300             # reviews classified and corrected
LIVE=4000               # most requests of the background traffic during promote

export COLUMNS=${COLUMNS:-120}   # the width of the commands' tables in a log
step() { printf '\n== %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/data-loop.XXXXXX")
export GATEWAY_DATA_DIR=$WORK/data
PIDS=()
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then  # what the servers said last, access-log lines left out
    for log in "$WORK/simulator.log" "$WORK/gateway.log"; do
      if [ -f "$log" ]; then
        echo "--- last lines of $(basename "$log")" >&2
        grep -v '"triage_gateway.access"' "$log" | tail -n 20 >&2 || true
      fi
    done
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # the embedded Redis the gateway started stops with it; if it outlived it (a gateway killed
  # hard), stop it by the pid the gateway recorded, once sure that pid is still that server
  for owner in "$GATEWAY_DATA_DIR"/*/owner.json; do
    [ -f "$owner" ] || continue
    pid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["redis_pid"])' \
      "$owner" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -qs "$WORK" "/proc/$pid/cmdline"; then kill "$pid" || true; fi
  done
  rm -rf "$WORK"
  if [ "$rc" -ne 0 ]; then echo "data loop FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() {  # URL, what, pid: wait (at most 60 s) for an HTTP 200 while the process runs
  for _ in $(seq 1 240); do
    if curl -sf -o /dev/null --max-time 2 "$1"; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then echo "$2 exited before it was ready" >&2; return 1; fi
    sleep 0.25
  done
  echo "$2 not ready at $1 after 60 s" >&2
  return 1
}

step "free ports"
read -r SIM_PORT GW_PORT < <("$PY" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
GW=http://127.0.0.1:$GW_PORT
echo "simulator 127.0.0.1:$SIM_PORT, gateway $GW, data $GATEWAY_DATA_DIR"

step "1. simulator (profiles, latency x0.05)"
"$TG" simulate --port "$SIM_PORT" --profiles examples/simulator-profiles.yaml \
  --latency-scale 0.05 --seed 7 >"$WORK/simulator.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$SIM_PORT/v1/models" simulator "${PIDS[-1]}"
head -n 3 "$WORK/simulator.log"

step "2. gateway (the example routes, pointed at this simulator)"
sed "s#127.0.0.1:18001#127.0.0.1:$SIM_PORT#" examples/ab-simulator.yaml >"$WORK/routes.yaml"
export GATEWAY_API_KEYS=loop-api-key GATEWAY_REVIEWER_KEYS=loop-reviewer-key
export GATEWAY_ADMIN_KEYS=loop-admin-key
KEY=loop-api-key
"$TG" serve --port "$GW_PORT" --routes "$WORK/routes.yaml" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
wait_ready "$GW/readyz" gateway "${PIDS[-1]}"
curl -sf "$GW/v1/routes" -H "Authorization: Bearer $KEY"; echo

step "3. classify $REVIEWS seed reviews"
"$PY" examples/review_traffic.py classify --gateway "$GW" --key "$KEY" --count "$REVIEWS"

step "4. corrections (a reviewer checks all four fields of each answer)"
"$PY" examples/review_traffic.py correct --gateway "$GW" --key "$KEY" --count "$REVIEWS"

step "5. export"
"$TG" export --out "$WORK/ft-data"

step "6. fine-tune against the simulator's fine-tuning API (registers the model)"
OPENAI_API_KEY=sim-key "$TG" finetune --provider openai --base gpt-4o-mini \
  --base-url "http://127.0.0.1:$SIM_PORT/v1" --train "$WORK/ft-data/train.jsonl" \
  --val "$WORK/ft-data/val.jsonl" --suffix triage --name triage-ft-1 \
  --price-in 0.2 --price-out 0.2 --poll-s 0.5 --timeout-s 120
"$TG" models list

step "7. deploy it as a candidate variant (weight 0)"
"$TG" models deploy triage-ft-1 --experiment triage --as-variant ft1
for i in $(seq 1 50); do  # every replica applies it within about a second
  routes=$(curl -sf "$GW/v1/routes" -H "Authorization: Bearer $KEY")
  if [[ $routes == *'"name":"ft1"'* ]]; then echo "ft1 is in /v1/routes"; break; fi
  if [ "$i" -eq 50 ]; then echo "ft1 is not in /v1/routes after 10 s" >&2; exit 1; fi
  sleep 0.2
done

step "8. offline eval on the seed set: control vs ft1"
"$TG" eval --data gateway/data/seed_reviews.jsonl --variants control,ft1 --limit 600 \
  --out "$WORK/eval" --no-progress

step "9. promote ft1 while traffic runs (steps 50,100; holds of 3 s)"
"$PY" examples/review_traffic.py live --gateway "$GW" --key "$KEY" --count "$LIVE" \
  --seconds 150 &
LIVE_PID=$!
PIDS+=("$LIVE_PID")
"$TG" promote --experiment triage --candidate ft1 --steps 50,100 --hold 3s --interval 1s \
  --gateway "$GW" --min-requests 40 --min-corrected 0 --error-margin 0.05 \
  --validity-margin 0.05 --latency-margin 0.25 --max-step-wait 60s
kill "$LIVE_PID" 2>/dev/null || true   # stop the traffic (if still running) ...
wait "$LIVE_PID"                        # ... which prints what it got back

step "10. rollback"
"$TG" rollback --experiment triage --reason "data-loop demo"
"$TG" rollback --experiment triage --reason "data-loop demo"   # again: changes nothing
"$TG" history --experiment triage

step "data loop passed"
