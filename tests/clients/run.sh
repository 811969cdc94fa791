#!/usr/bin/env bash
# Generated clients and schemathesis against a real server (issue 13). Builds Latchkey,
# starts it on a free port with a fresh SQLite database, creates an admin token, then:
#   1. generates a Python client with openapi-python-client (any warning fails the run)
#      and TypeScript types with openapi-typescript (checked with tsc), and has each,
#      through openapi-fetch for TypeScript, drive an admin scenario (scenario.py,
#      ts/scenario.mjs): create a user, search for them, create a client, rotate its
#      secret, query the audit log;
#   2. runs schemathesis over the whole spec with the admin token (schemathesis.toml).
# Ends with "N passed, N failed" over all of these checks; exits non-zero on a failure.
#
#   bash tests/clients/run.sh
#
# Needs python3 with venv, node and npm; installs its tools under target/ and ts/.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/debug/latchkey"
VENV="$TARGET_DIR/clients-venv"
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
SCHEMATHESIS_VERSION=4.32.5
# Test cases per operation: about two minutes on 2 cores for the whole spec.
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-20}"

log() { printf 'clients: %s\n' "$*"; }

# Latchkey rejects unknown LATCHKEY_* variables, and the caller's (a CI database URL,
# say) are not meant for this server.
for name in $(compgen -e); do
  case "$name" in LATCHKEY_*) unset "$name" ;; esac
done

log "building"
(cd "$ROOT" && cargo build --bin latchkey)

if ! "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(0 if (m.version("openapi-python-client"), m.version("schemathesis")) == (sys.argv[1], sys.argv[2]) else 1)' \
    "$OPENAPI_PYTHON_CLIENT_VERSION" "$SCHEMATHESIS_VERSION" 2>/dev/null; then
  log "installing openapi-python-client and schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" \
    "schemathesis==$SCHEMATHESIS_VERSION" python-dateutil
fi
(cd "$HERE/ts" && npm ci --no-audit --no-fund --silent)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-clients.XXXXXX")"
SERVER_PID=""
cleanup() {
  local status=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -f "$WORK/serve.log" ]]; then
    echo "clients: last lines of the server log:" >&2
    grep -v 'password:' "$WORK/serve.log" | tail -n 40 >&2 || true
  fi
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
export LATCHKEY_DATA_DIR="$WORK/data"
export LATCHKEY_LISTEN="127.0.0.1:$PORT"
export LATCHKEY_ISSUER="http://localhost:$PORT"
export LATCHKEY_LOG=warn
export LATCHKEY_REGISTRATION_MODE=open
# schemathesis sends thousands of requests from one address with one token: lift the
# per-caller and per-address limits (429 is documented wherever it can be answered), and
# hash passwords cheaply, since it creates many accounts in a debug build.
export LATCHKEY_API_REQUESTS_PER_MINUTE=1000000
export LATCHKEY_AUTHORIZATION_REQUESTS_PER_MINUTE=1000000
export LATCHKEY_ARGON2_MEMORY_KIB=1024
export LATCHKEY_ARGON2_ITERATIONS=1
mkdir -p "$LATCHKEY_DATA_DIR"

log "starting latchkey on $BASE"
"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$BASE/readyz" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "clients: the server exited" >&2
    exit 1
  fi
  sleep 0.1
done
TOKEN="$("$BIN" admin-token create --username admin --name clients-ci --json \
  | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')"

passed=0
failed=0
result() { # name, status
  if [[ $2 -eq 0 ]]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}
# Counts a scenario's PASS/FAIL lines.
count_lines() {
  passed=$((passed + $(grep -c '^PASS ' "$1" || true)))
  failed=$((failed + $(grep -c '^FAIL ' "$1" || true)))
}

log "generating the Python client"
status=0
"$VENV/bin/openapi-python-client" generate --path "$ROOT/openapi/openapi.json" --meta none \
  --output-path "$WORK/py/latchkey_client" --config "$HERE/openapi-python-client.yaml" \
  >"$WORK/py-gen.log" 2>&1 || status=$?
cat "$WORK/py-gen.log"
if [[ $status -eq 0 ]] && grep -qiE 'warning|error|will not be generated|unable to' "$WORK/py-gen.log"; then
  status=1
fi
result "openapi-python-client generates every operation without a warning" $status

status=0
BASE="$BASE" TOKEN="$TOKEN" PYTHONPATH="$WORK/py" "$VENV/bin/python" "$HERE/scenario.py" \
  >"$WORK/py-scenario.log" 2>&1 || status=$?
cat "$WORK/py-scenario.log"
count_lines "$WORK/py-scenario.log"
if [[ $status -ne 0 ]] && ! grep -q '^FAIL ' "$WORK/py-scenario.log"; then result "python scenario ran" 1; fi

log "generating the TypeScript types"
status=0
(cd "$HERE/ts" && npx --no-install openapi-typescript "$ROOT/openapi/openapi.json" -o schema.d.ts \
  && npx --no-install tsc -p .) || status=$?
result "openapi-typescript types generate, and the scenario type-checks against them" $status

status=0
(cd "$HERE/ts" && BASE="$BASE" TOKEN="$TOKEN" node scenario.mjs) >"$WORK/ts-scenario.log" 2>&1 || status=$?
cat "$WORK/ts-scenario.log"
count_lines "$WORK/ts-scenario.log"
if [[ $status -ne 0 ]] && ! grep -q '^FAIL ' "$WORK/ts-scenario.log"; then result "ts scenario ran" 1; fi

log "schemathesis over the whole spec ($ST_MAX_EXAMPLES examples per operation)"
schemathesis() {
  # From the scratch folder: schemathesis keeps a run cache (.schemathesis/) in its cwd.
  (cd "$WORK" && "$VENV/bin/st" --config-file "$HERE/schemathesis.toml" run "$BASE/api/openapi.json" \
    --url "$BASE/api" -H "Authorization: Bearer $TOKEN" \
    --checks all \
    --max-examples "$ST_MAX_EXAMPLES" --workers 2 --seed 13 --no-color \
    --report junit --report-dir "$WORK/st-report" "$@")
}
token_works() {
  "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]}), timeout=10)' \
    "$BASE/api/admin/v1/stats" "$TOKEN"
}
# Its stateful phase follows links from the token list to revokeAdminToken, which would
# revoke this run's own token and leave every later admin operation tested only for its
# 401: that operation runs last, on its own.
status=0
schemathesis --exclude-operation-id revokeAdminToken || status=$?
result "schemathesis --checks all finds nothing" $status
status=0
token_works || status=$?
result "the admin token still works after the run (every admin operation was really tested)" $status
status=0
schemathesis --include-operation-id revokeAdminToken || status=$?
result "schemathesis on revokeAdminToken finds nothing" $status

echo "clients: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
