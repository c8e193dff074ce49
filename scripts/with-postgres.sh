#!/usr/bin/env bash
# Runs a command with a throwaway Postgres cluster (fsync off, loopback only),
# exported as QUIVER_TEST_PG_URL, and removes the cluster afterwards whatever
# happens. A cluster that fails to start fails the run.
#   QUIVER_TEST_PG_FSYNC=on   fsync on (the benchmark)
#   QUIVER_TEST_PG_OPTS="..." more server options (e.g. "-c shared_preload_libraries=...")
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "with-postgres: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
  exit 1
fi
PORT=${QUIVER_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
DIR=$(mktemp -d /tmp/quiver-pg.XXXXXX)
RUN_AS=()
if [ "$(id -u)" = "0" ]; then
  chown postgres:postgres "$DIR"
  RUN_AS=(runuser -u postgres --)
fi
cleanup() {
  "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

"${RUN_AS[@]}" "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w -t 30 \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=${QUIVER_TEST_PG_FSYNC:-off} -c max_connections=300 ${QUIVER_TEST_PG_OPTS:-}" start >/dev/null \
  || { cat "$DIR/pg.log" >&2; exit 1; }

export QUIVER_TEST_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: cluster on port $PORT" >&2
"$@"
