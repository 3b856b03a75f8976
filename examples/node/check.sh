#!/usr/bin/env bash
# Starts an arbiter on a temp database, runs scribe.mjs against it, checks
# the result with the CLI. Exits non-zero on any failure.
#   examples/node/check.sh     (the binaries of target/release, else target/debug;
#                               SCRIBE_BIN_DIR=DIR to choose)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SCRIBE_BIN_DIR:-}
if [ -z "$bin" ]; then
  bin=$here/../../target/release
  [ -x "$bin/scribe" ] || bin=$here/../../target/debug
fi
dir=$(mktemp -d /tmp/scnode.XXXXXX)
db=$dir/app.db
cleanup() {
  "$bin/scribe" --db "$db" stop --grace 0s >/dev/null 2>&1 || true
  pid=$(sed -n 's/^pid=//p' "$db.scribe.lock" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q scribed "/proc/$pid/cmdline" 2>/dev/null; then
    kill -9 "$pid" || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin/scribe" --db "$db" start
for _ in $(seq 100); do [ -S "$db.scribe.http.sock" ] && break; sleep 0.02; done
node "$here/scribe.mjs" "$db"
rows=$("$bin/scribe" --db "$db" query "SELECT count(*) AS n FROM node_notes WHERE body = 'hello from node' AND raw = x'0001ff'" --csv | tail -n 1)
if [ "$rows" != "1" ]; then
  echo "check.sh: expected exactly 1 row written by the example, found '$rows'" >&2
  exit 1
fi
echo "check.sh: ok"
