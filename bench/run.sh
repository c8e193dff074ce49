#!/usr/bin/env bash
# make bench: the same MLflow-REST workloads against Quiver and a real
# `mlflow server`, both on one throwaway Postgres cluster (fsync on), one
# server at a time, then bench/RESULTS.md.
#
#   BENCH_SCALE=1     full sizes (default); 0.05 for a quick smoke run
#   BENCH_MLFLOW_VENV where to keep the mlflow venv (default .venv-bench)
#   BENCH_SKIP_BUILD=1 use the existing target/release binaries (e.g. while the
#                     work tree does not build); the report says so
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCALE=${BENCH_SCALE:-1}
VENV=${BENCH_MLFLOW_VENV:-$ROOT/.venv-bench}
MLFLOW_VERSION=3.17.2

log() { echo "[bench $(date +%T)] $*" >&2; }

# Re-run this script inside a throwaway Postgres cluster with fsync on;
# scripts/with-postgres.sh removes the cluster whatever happens.
if [ -z "${BENCH_INSIDE_PG:-}" ]; then
  # Recorded before anything else: the command as typed.
  export BENCH_COMMAND="${BENCH_COMMAND:-BENCH_SCALE=$SCALE bench/run.sh $*}"
  if [ -n "${BENCH_SKIP_BUILD:-}" ]; then
    log "BENCH_SKIP_BUILD set: using the existing target/release/quiver and quiver-bench"
    export BENCH_BUILD_NOTE="not rebuilt for this run (BENCH_SKIP_BUILD): target/release/quiver built $(date -u -r target/release/quiver '+%Y-%m-%d %H:%M UTC')"
  else
    log "building (release): quiver-server, quiver-bench"
    cargo build --release -p quiver-server -p quiver-bench >&2
    export BENCH_BUILD_NOTE="built by this run from the work tree at commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- services gateway proto Cargo.toml || echo ' plus uncommitted changes')"
  fi
  if [ ! -x "$VENV/bin/mlflow" ] || [ ! -f "$VENV/.installed-$MLFLOW_VERSION-pg" ]; then
    log "creating $VENV with mlflow==$MLFLOW_VERSION psycopg2-binary psycopg[binary] (mlflow 3.17 maps postgresql:// to psycopg 3)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" psycopg2-binary "psycopg[binary]" >&2
    touch "$VENV/.installed-$MLFLOW_VERSION-pg"
  fi
  export BENCH_INSIDE_PG=1
  # pg_stat_statements: the report splits each read workload's time into the
  # database's share and the rest (same overhead for both servers).
  exec env QUIVER_TEST_PG_FSYNC=on \
    QUIVER_TEST_PG_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on" \
    scripts/with-postgres.sh "$0" "$@"
fi

PG_URL=${QUIVER_TEST_PG_URL:?with-postgres.sh sets it}
PG_BASE=${PG_URL%/*}
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
WORK=$(mktemp -d /tmp/quiver-bench.XXXXXX)
QUIVER_PID=""
MLFLOW_PID=""

stop_pid() { # pid [group]
  local pid=$1 group=${2:-}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  if [ -n "$group" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    if [ -n "$group" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_pid "$QUIVER_PID"
  stop_pid "$MLFLOW_PID" group   # mlflow runs in its own session: its uvicorn/gunicorn workers go with it
  if [ "$rc" != 0 ]; then
    log "FAILED (exit $rc); server logs:"
    tail -n 30 "$WORK/quiver.log" "$WORK/mlflow.log" >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for db in quiver quiver2 mlflow copybench; do
  "${PSQL[@]}" "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
done
log "Postgres: $PG_BASE (fsync=$("${PSQL[@]}" -At "$PG_URL" -c 'SHOW fsync'), databases quiver, quiver2, mlflow, copybench)"

Q_HTTP=$(free_port); Q_GRPC=$(free_port); M_PORT=$(free_port)

wait_health() { # name port pid seconds
  local deadline=$((SECONDS + $4))
  until curl -fs -o /dev/null "http://127.0.0.1:$2/health"; do
    kill -0 "$3" 2>/dev/null || { log "$1 exited during start-up"; tail -n 40 "$WORK/$1.log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "$1 not healthy after $4 s"; tail -n 40 "$WORK/$1.log" >&2; exit 1; }
    sleep 0.5
  done
  log "$1 healthy"
}
# CPU ticks (1/100 s) used so far by a process and its descendants.
tree_ticks() {
  python3 - "$1" <<'PY'
import os, sys
parent, ticks = {}, {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(p)] = int(fields[1])
        ticks[int(p)] = int(fields[11]) + int(fields[12])
tree, grew = {int(sys.argv[1])}, True
while grew:
    more = {p for p, pp in parent.items() if pp in tree} - tree
    tree |= more
    grew = bool(more)
print(sum(ticks.get(p, 0) for p in tree))
PY
}
# Waits until a server's process tree is idle (< 10% of a core over 5 s, at
# most 180 s): MLflow 3 starts job consumers that use ~2 cores for ~30 s
# after /health answers, which would otherwise compete with the workloads.
wait_idle() { # name pid
  local deadline=$((SECONDS + 180)) a b
  while [ $SECONDS -lt $deadline ]; do
    a=$(tree_ticks "$2"); sleep 5; b=$(tree_ticks "$2")
    if [ $((b - a)) -lt 50 ]; then log "$1 idle ($((b - a)) ticks in 5 s)"; return 0; fi
  done
  log "$1 still busy after 180 s"
}

BENCH=target/release/quiver-bench
# Another build on the machine competes for the 2 cores: note it in the report.
busy() { echo "$(pgrep -c -x rustc || true) rustc, $(pgrep -c -x cargo || true) cargo process(es), load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

# Each server runs alone: started, settled, measured, stopped. Quiver runs
# twice, before and after MLflow (A-B-A), each time on a fresh database, and
# the report takes the mean of its two phases: this machine's speed drifts
# over minutes (other tenants), and bracketing MLflow's phase cancels a linear
# drift instead of charging it to whichever server ran in the slow stretch.
quiver_phase() { # phase-name database out.json
  log "starting quiver ($1) on 127.0.0.1:$Q_HTTP, database $2"
  QUIVER__LOG__LEVEL=warn target/release/quiver run --services all \
    --database-url "$PG_BASE/$2" --http-addr "127.0.0.1:$Q_HTTP" --grpc-addr "127.0.0.1:$Q_GRPC" \
    --data-dir "$WORK/$2-data" >"$WORK/$2.log" 2>&1 &
  QUIVER_PID=$!
  wait_health quiver "$Q_HTTP" "$QUIVER_PID" 60
  wait_idle quiver "$QUIVER_PID"
  sleep 3 # before the idle RSS reading
  BUSY_Q="$BUSY_Q${BUSY_Q:+; }$1: $(busy)"
  log "=== Quiver, $1 === (machine: $(busy))"
  "$BENCH" run --label quiver --base-url "http://127.0.0.1:$Q_HTTP" --pid "$QUIVER_PID" --scale "$SCALE" \
    --pg-url "$PG_URL" --pg-database "$2" --out "$3"
}
BUSY_Q=""
quiver_phase "before MLflow" quiver "$WORK/quiver.json"
# A file too big for MLflow's own proxy (users report failures past ~800 MB),
# through the stock client with multipart upload on: 5 GiB at full scale.
BIG_BYTES=$(python3 -c "print(max(int(5 * 1024**3 * $SCALE), 256 * 1024**2))")
log "=== stock mlflow client: $((BIG_BYTES / 1024 / 1024)) MiB artifact up and down through Quiver ==="
BIG_RESULT=$("$VENV/bin/python" bench/stock_client_big_file.py "http://127.0.0.1:$Q_HTTP" "$BIG_BYTES" "$WORK/big" | tail -n 1) \
  || BIG_RESULT="failed: $BIG_RESULT"
rm -rf "$WORK/big"
log "big file: $BIG_RESULT"
stop_pid "$QUIVER_PID"; QUIVER_PID=""

log "starting mlflow server $MLFLOW_VERSION on 127.0.0.1:$M_PORT (4 workers; migrations take ~40 s)"
mkdir -p "$WORK/mlflow-artifacts"
setsid "$VENV/bin/mlflow" server --backend-store-uri "postgresql://${PG_BASE#postgres://}/mlflow" \
  --artifacts-destination "$WORK/mlflow-artifacts" --host 127.0.0.1 --port "$M_PORT" --workers 4 \
  >"$WORK/mlflow.log" 2>&1 &
MLFLOW_PID=$!
wait_health mlflow "$M_PORT" "$MLFLOW_PID" 300
wait_idle mlflow "$MLFLOW_PID"
sleep 3 # before the idle RSS reading
BUSY_M=$(busy)
log "=== MLflow === (machine: $BUSY_M)"
"$BENCH" run --label mlflow --base-url "http://127.0.0.1:$M_PORT" --pid "$MLFLOW_PID" --scale "$SCALE" \
  --pg-url "$PG_URL" --pg-database mlflow --out "$WORK/mlflow.json"
stop_pid "$MLFLOW_PID" group; MLFLOW_PID=""
quiver_phase "after MLflow" quiver2 "$WORK/quiver2.json"
stop_pid "$QUIVER_PID"; QUIVER_PID=""
log "=== raw Postgres COPY baseline ==="
"$BENCH" copy --database-url "$PG_BASE/copybench" --scale "$SCALE" --out "$WORK/copy.json"

BUSY_END=$(busy)
{
  echo "## How this was run"
  echo
  echo "Command: \`${BENCH_COMMAND}\` (from the repository root; \`make bench\` runs \`bench/run.sh\`), finished $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "- Quiver: \`target/release/quiver run --services all --database-url postgres://…/quiver\` (\`…/quiver2\` for the phase after MLflow) (defaults otherwise: database.max_connections 16); binary ${BENCH_BUILD_NOTE}."
  echo "- MLflow: \`mlflow server --backend-store-uri postgresql://…/mlflow --artifacts-destination DIR --host 127.0.0.1 --port P --workers 4\`, mlflow $("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)') from PyPI."
  echo "- Postgres: $("${PSQL[@]}" -At "$PG_URL" -c 'SHOW server_version') throwaway cluster (\`scripts/with-postgres.sh\`, \`QUIVER_TEST_PG_FSYNC=on\`: fsync on, synchronous_commit on; \`pg_stat_statements\` preloaded for the time split below, the same small overhead for both servers), both servers in the same cluster, own databases."
  echo "- Load generator: \`target/release/quiver-bench\` (Rust, tokio + hyper 1 HTTP/1.1 keep-alive, one connection per client), on the same machine. Each server runs alone: started, waited for until its process tree is idle (MLflow 3's job consumers use ~2 cores for ~30 s after /health answers), measured, stopped; Quiver before and again after MLflow (A-B-A, each Quiver phase on a fresh database; its figures are the mean of the two phases, since this machine's speed drifts over minutes). Read workloads start once the machine is quiet (under 15% CPU for a second, at most a minute after the data set-up), and the timed loops read each reply into typed shapes that skip what they do not check (no JSON tree is built; building one for a 25,000-point page cost the client tens of ms). Requests are shaped as the stock \`mlflow\` 3.x Python client sends them (JSON POST bodies; get-history as a GET query with \`run_id\`, \`run_uuid\`, \`metric_key\`, \`max_results=25000\`, \`page_token\`)."
  echo "- TCP: client sockets set TCP_NODELAY at connect and TCP_QUICKACK at connect **and again after every read** (the stream wrapper calls \`setsockopt(TCP_QUICKACK)\` after each read, since Linux clears it), so delayed-ACK/Nagle stalls (stock MLflow leaves Nagle on) do not dominate; the comparison is server compute against server compute."
  echo
  echo "Wall time of the benchmark proper (servers up to report, not counting the build/venv): $((SECONDS / 60)) min $((SECONDS % 60)) s. Most of MLflow's share is its untimed data set-up (20,000 REST calls for the 10,000 search runs)."
  echo
  echo "Machine:"
  echo
  echo '```'
  echo "\$ nproc"; nproc
  echo "\$ free -m"; free -m
  echo "\$ uname -a"; uname -a
  echo '```'
  echo
  echo "Large file through the stock client (\`bench/stock_client_big_file.py\`: \`mlflow.log_artifact\` with \`MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true\`, then \`mlflow.artifacts.download_artifacts\`, SHA-256 compared), Quiver only: \`$BIG_RESULT\`."
  echo
  echo "Other work on the machine (shares the 2 cores; a running rustc means someone else was compiling): before Quiver's workloads: $BUSY_Q; before MLflow's: $BUSY_M; at the end: $BUSY_END."
  echo
} >"$WORK/machine.md"

"$BENCH" report --quiver "$WORK/quiver.json" --quiver-after "$WORK/quiver2.json" --mlflow "$WORK/mlflow.json" --copy "$WORK/copy.json" \
  --machine "$WORK/machine.md" --out bench/RESULTS.md
mkdir -p bench/out && cp "$WORK"/*.json "$WORK/machine.md" bench/out/
log "wrote bench/RESULTS.md (raw JSON in bench/out/)"
