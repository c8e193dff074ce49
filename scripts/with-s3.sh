#!/usr/bin/env bash
# Runs a command with a throwaway S3-compatible server (moto, from the test
# venv) on a free loopback port, exported as QUIVER_TEST_S3_ENDPOINT with a
# bucket `quiver-test`; stops it afterwards whatever happens.
set -euo pipefail
MOTO=${MOTO_SERVER:-.venv/bin/moto_server}
if [ ! -x "$MOTO" ]; then
  echo "with-s3: $MOTO not found (make .venv/.installed installs moto[server])" >&2
  exit 1
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp /tmp/quiver-moto.XXXXXX.log)
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.2
done
curl -sf -X PUT "http://127.0.0.1:$PORT/quiver-test" >/dev/null || { cat "$LOG" >&2; exit 1; }
export QUIVER_TEST_S3_ENDPOINT="http://127.0.0.1:$PORT"
echo "with-s3: moto on port $PORT" >&2
"$@"
