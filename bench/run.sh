#!/usr/bin/env bash
# Latchkey benchmark: throughput and p99 of the public endpoints, complete password
# sign-ins against the bare argon2id rate, cold start and idle memory. The server runs
# on one core (BENCH_SERVER_CPU, default 0), every load generator on another
# (BENCH_LOAD_CPU, default 1). All traffic goes to 127.0.0.1. See bench/README.md.
#
# Knobs (environment): BENCH_PORT (18480), BENCH_DURATION (10 s per wrk run),
# BENCH_CONNECTIONS (32), BENCH_WARMUP (2 s), BENCH_LOGIN_SECONDS (15),
# BENCH_LOGIN_WORKERS (4), BENCH_HASH_SECONDS (3 s hashing + 3 s verifying, run twice),
# BENCH_COLD_RUNS (5),
# BENCH_KEEP=1 keeps the scratch directory with every raw output.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${BENCH_PORT:-18480}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
WARMUP=${BENCH_WARMUP:-2}
LOGIN_SECONDS=${BENCH_LOGIN_SECONDS:-15}
LOGIN_WORKERS=${BENCH_LOGIN_WORKERS:-4}
HASH_SECONDS=${BENCH_HASH_SECONDS:-3}
COLD_RUNS=${BENCH_COLD_RUNS:-5}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}

# The argon2id cost the server uses (Latchkey's defaults) and the bare-rate example uses.
ARGON2_MEMORY_KIB=19456
ARGON2_ITERATIONS=2
ARGON2_PARALLELISM=1

# Bound the knobs so that a typo cannot start an hour-long run.
clamp() { local v=$1 lo=$2 hi=$3; ((v < lo)) && v=$lo; ((v > hi)) && v=$hi; echo "$v"; }
DURATION=$(clamp "$DURATION" 1 60)
WARMUP=$(clamp "$WARMUP" 0 30)
CONNECTIONS=$(clamp "$CONNECTIONS" 1 1024)
LOGIN_SECONDS=$(clamp "$LOGIN_SECONDS" 1 120)
LOGIN_WORKERS=$(clamp "$LOGIN_WORKERS" 1 64)
HASH_SECONDS=$(clamp "$HASH_SECONDS" 1 30)
COLD_RUNS=$(clamp "$COLD_RUNS" 1 20)

say() { printf '\n=== %s ===\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# Only the variables set below may reach the server and the CLI: Latchkey refuses
# unknown LATCHKEY_* names, and a stray one would change what is measured.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^LATCHKEY_' || true)

for tool in taskset curl awk sed base64; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null; then
  say "installing wrk"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  command -v wrk >/dev/null || die "wrk is missing and could not be installed (apt-get install wrk)"
fi
CPUS=$(nproc)
((SERVER_CPU < CPUS && LOAD_CPU < CPUS)) || die "needs CPUs $SERVER_CPU and $LOAD_CPU; this machine has $CPUS"

say "building (release)"
cargo build --release -p latchkey --bin latchkey --examples >&2
BIN=$PWD/target/release/latchkey
EXAMPLES=$PWD/target/release/examples
BENCH_DIR=$PWD/bench

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "port $PORT is in use; set BENCH_PORT"
fi

WORK=$(mktemp -d -t latchkey-bench.XXXXXX)
SERVER_PID=
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
cleanup() {
  stop_server
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench: raw outputs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export LATCHKEY_DATA_DIR=$WORK/data
export LATCHKEY_LISTEN=127.0.0.1:$PORT
export LATCHKEY_ISSUER=http://localhost:$PORT
export LATCHKEY_LOG=warn
export LATCHKEY_ARGON2_MEMORY_KIB=$ARGON2_MEMORY_KIB
export LATCHKEY_ARGON2_ITERATIONS=$ARGON2_ITERATIONS
export LATCHKEY_ARGON2_PARALLELISM=$ARGON2_PARALLELISM
BASE=http://127.0.0.1:$PORT

start_server() { # start_server LOG_NAME: serve on SERVER_CPU and wait for /healthz
  taskset -c "$SERVER_CPU" "$BIN" serve >>"$WORK/$1.out" 2>>"$WORK/$1.err" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$1.err" >&2; die "the server exited"; }
    sleep 0.05
  done
  die "the server did not answer /healthz within 15 s"
}
say "starting latchkey serve on CPU $SERVER_CPU (data in $LATCHKEY_DATA_DIR)"
start_server server

# The CLI opens the same database; it runs on the load CPU.
cli() { taskset -c "$LOAD_CPU" "$BIN" "$@"; }
json_field() { # json_field JSON NAME: a top-level string field, without needing jq
  sed -n 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$1" | head -n1
}

say "creating a user and two clients with the CLI"
USER_NAME=bench
USER_PASSWORD=bench-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
printf '%s\n' "$USER_PASSWORD" |
  cli user create --username "$USER_NAME" --email bench@example.com --password-stdin >/dev/null
CC_JSON=$(cli client create --name bench-service --grant-type client_credentials --json)
CC_ID=$(json_field "$CC_JSON" client_id)
CC_SECRET=$(json_field "$CC_JSON" client_secret)
REDIRECT_URI=http://localhost:9/cb
WEB_JSON=$(cli client create --name bench-web --redirect-uri "$REDIRECT_URI" --first-party --json)
WEB_ID=$(json_field "$WEB_JSON" client_id)
WEB_SECRET=$(json_field "$WEB_JSON" client_secret)
[[ -n $CC_ID && -n $CC_SECRET && -n $WEB_ID && -n $WEB_SECRET ]] ||
  die "could not read client_id/client_secret from: $CC_JSON $WEB_JSON"
CC_BASIC=$(printf '%s:%s' "$CC_ID" "$CC_SECRET" | base64 -w0)

say "sanity checks"
TOKEN_JSON=$(curl -fsS -u "$CC_ID:$CC_SECRET" -d grant_type=client_credentials "$BASE/token")
ACCESS_TOKEN=$(json_field "$TOKEN_JSON" access_token)
[[ -n $ACCESS_TOKEN ]] || die "no access token from client_credentials: $TOKEN_JSON"
INTROSPECTION=$(curl -fsS -u "$CC_ID:$CC_SECRET" --data-urlencode "token=$ACCESS_TOKEN" "$BASE/introspect")
grep -q '"active":[[:space:]]*true' <<<"$INTROSPECTION" || die "introspection says: $INTROSPECTION"
curl -fsS -o /dev/null "$BASE/.well-known/openid-configuration"
curl -fsS -o /dev/null "$BASE/jwks"
sleep 1
rss_kib() { awk -v f="${1:-VmRSS}:" '$1 == f {print $2}' "/proc/$SERVER_PID/status"; }
RSS_IDLE_KIB=$(rss_kib)
RSS_IDLE_ANON_KIB=$(rss_kib RssAnon)
RSS_IDLE_FILE_KIB=$(rss_kib RssFile)
echo "idle RSS after start and a few requests: $RSS_IDLE_KIB KiB (anonymous $RSS_IDLE_ANON_KIB, file-backed $RSS_IDLE_FILE_KIB)" >&2

# --- wrk -------------------------------------------------------------------------------
to_ms() { # wrk latency (850.00us, 1.23ms, 2.00s, 1.00m) -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.2f", n }'
}
declare -A RPS P99 ERRS
run_wrk() { # run_wrk KEY URL [LUA_SCRIPT]
  local key=$1 url=$2 script=${3:-} out=$WORK/wrk-$1.txt
  local -a extra=()
  [[ -n $script ]] && extra=(-s "$script")
  if ((WARMUP > 0)); then
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${extra[@]}" "$url" >/dev/null
  fi
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency \
    "${extra[@]}" "$url" >"$out"
  sed 's/^/    /' "$out" >&2
  RPS[$key]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  P99[$key]=$(to_ms "$(awk '$1 == "99%" {print $2; exit}' "$out")")
  local non2xx socket not200
  non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")
  socket=$(awk '/Socket errors/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s}' "$out")
  not200=$(awk '/^NOT_200/ {print $2}' "$out")
  ERRS[$key]=$((${non2xx:-0} + ${socket:-0} + ${not200:-0}))
}

say "1. discovery"
run_wrk discovery "$BASE/.well-known/openid-configuration"
say "2. JWKS"
run_wrk jwks "$BASE/jwks"
say "3. client_credentials token issuance"
BENCH_BASIC=$CC_BASIC BENCH_BODY=grant_type=client_credentials \
  run_wrk token "$BASE/token" "$BENCH_DIR/post_form.lua"
say "4. introspection"
BENCH_BASIC=$CC_BASIC BENCH_BODY="token=$ACCESS_TOKEN" \
  run_wrk introspect "$BASE/introspect" "$BENCH_DIR/post_form.lua"

# The bare rate is measured right before and right after the sign-in load (with the
# server idle) and averaged: on a shared virtual machine it drifts by 10 % or more.
hash_run() { # hash_run OUTPUT
  taskset -c "$SERVER_CPU" "$EXAMPLES/hash_rate" --memory-kib "$ARGON2_MEMORY_KIB" \
    --iterations "$ARGON2_ITERATIONS" --parallelism "$ARGON2_PARALLELISM" \
    --seconds "$HASH_SECONDS" | tee "$1" >&2
}
result() { sed -n "s/^RESULT .*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -n1; }

say "6. bare argon2id on CPU $SERVER_CPU, before the sign-ins (${HASH_SECONDS}s hashing, ${HASH_SECONDS}s verifying)"
hash_run "$WORK/hash-before.txt"

login_run() { # login_run SECONDS OUTPUT
  taskset -c "$LOAD_CPU" "$EXAMPLES/login_load" --base-url "$BASE" \
    --client-id "$WEB_ID" --client-secret "$WEB_SECRET" --redirect-uri "$REDIRECT_URI" \
    --username "$USER_NAME" --password "$USER_PASSWORD" \
    --workers "$LOGIN_WORKERS" --seconds "$1" | tee "$2" >&2
}
say "5. password sign-in flows ($LOGIN_WORKERS browsers, ${LOGIN_SECONDS}s)"
login_run "$LOGIN_SECONDS" "$WORK/login.txt"
LOGIN_RATE=$(result "$WORK/login.txt" flows_per_s)
LOGIN_P99=$(result "$WORK/login.txt" p99_ms)
LOGIN_ERRORS=$(result "$WORK/login.txt" errors)

RSS_AFTER_KIB=$(rss_kib)
RSS_AFTER_ANON_KIB=$(rss_kib RssAnon)
echo "RSS after all the load: $RSS_AFTER_KIB KiB (anonymous $RSS_AFTER_ANON_KIB KiB)" >&2
stop_server

# Diagnostic: the same flows with a trivial argon2 cost (the stored hash is upgraded to it
# on the first sign-in) show what a sign-in costs the server apart from hashing.
say "5. (diagnostic) sign-in flows with argon2id m=64 KiB t=1"
LATCHKEY_ARGON2_MEMORY_KIB=64 LATCHKEY_ARGON2_ITERATIONS=1 start_server server-cheap
login_run 8 "$WORK/login-cheap.txt"
CHEAP_RATE=$(result "$WORK/login-cheap.txt" flows_per_s)
stop_server

say "6. bare argon2id on CPU $SERVER_CPU, again after the sign-ins"
hash_run "$WORK/hash-after.txt"
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
HASH_BEFORE=$(result "$WORK/hash-before.txt" hashes_per_s)
HASH_AFTER=$(result "$WORK/hash-after.txt" hashes_per_s)
HASH_RATE=$(mean "$HASH_BEFORE" "$HASH_AFTER")
VERIFY_RATE=$(mean "$(result "$WORK/hash-before.txt" verifies_per_s)" "$(result "$WORK/hash-after.txt" verifies_per_s)")

say "7. cold start ($COLD_RUNS runs each)"
taskset -c "$LOAD_CPU" "$EXAMPLES/cold_start" --runs "$COLD_RUNS" --work-dir "$WORK/cold" -- \
  taskset -c "$SERVER_CPU" "$BIN" serve | tee "$WORK/cold.txt" >&2
COLD_EXISTING=$(result "$WORK/cold.txt" existing_median_ms)
COLD_FRESH=$(result "$WORK/cold.txt" fresh_median_ms)

# --- the table ------------------------------------------------------------------------
verdict() { # verdict VALUE OP LIMIT -> PASS/MISS
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 < l + 0)
    print (v == "" ? "n/a" : (ok ? "PASS" : "MISS")) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1f", 100 * a / b; else print "" }'; }
LOGIN_PCT=$(ratio "$LOGIN_RATE" "$HASH_RATE")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
RSS_IDLE_MIB=$(mib "$RSS_IDLE_KIB")
LOGIN_VERIFY_PCT=$(ratio "$LOGIN_RATE" "$VERIFY_RATE")

row() { printf '%-2s %-40s %16s %11s %18s  %s\n' "$@" | sed 's/[[:space:]]*$//'; }
echo
echo "Latchkey benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
echo "machine: $CPUS CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s (+${WARMUP}s warm-up); argon2id m=$ARGON2_MEMORY_KIB KiB t=$ARGON2_ITERATIONS p=$ARGON2_PARALLELISM; SQLite"
echo
row "#" "benchmark" "result" "p99" "target" "verdict"
row "--" "----------------------------------------" "----------------" "-----------" "------------------" "-------"
row 1 "discovery GET /.well-known/openid-conf." "${RPS[discovery]} req/s" "${P99[discovery]} ms" ">= 50000 req/s" "$(verdict "${RPS[discovery]}" ">=" 50000)"
row 2 "JWKS GET /jwks" "${RPS[jwks]} req/s" "${P99[jwks]} ms" ">= 50000 req/s" "$(verdict "${RPS[jwks]}" ">=" 50000)"
row 3 "POST /token client_credentials" "${RPS[token]} req/s" "${P99[token]} ms" ">= 20000 req/s" "$(verdict "${RPS[token]}" ">=" 20000)"
row 4 "POST /introspect (access token)" "${RPS[introspect]} req/s" "${P99[introspect]} ms" ">= 15000 req/s" "$(verdict "${RPS[introspect]}" ">=" 15000)"
row 5 "password sign-in, complete flows" "$LOGIN_RATE flows/s" "$LOGIN_P99 ms" "(see 6)" ""
row "" "  same, argon2id m=64 KiB t=1 (info)" "$CHEAP_RATE flows/s" "" "" ""
row "" "  = server time per sign-in besides hash" "$(awk -v r="$CHEAP_RATE" 'BEGIN { if (r > 0) printf "%.2f", 1000 / r }') ms" "" "" ""
row 6 "bare argon2id hash, 1 core" "$HASH_RATE hash/s" "" "" ""
row "" "  sign-in rate / bare hash rate" "$LOGIN_PCT %" "" ">= 90 %" "$(verdict "$LOGIN_PCT" ">=" 90)"
row "" "  bare argon2id verify (what sign-in does)" "$VERIFY_RATE /s" "" "" ""
row "" "  sign-in rate / bare verify rate (info)" "$LOGIN_VERIFY_PCT %" "" "" ""
row 7 "cold start, existing data dir (median)" "$COLD_EXISTING ms" "" "< 100 ms" "$(verdict "$COLD_EXISTING" "<" 100)"
row "" "cold start, fresh data dir (median)" "$COLD_FRESH ms" "" "< 100 ms" "$(verdict "$COLD_FRESH" "<" 100)"
row 8 "idle RSS after start + a few requests" "$RSS_IDLE_MIB MiB" "" "< 20 MiB" "$(verdict "$RSS_IDLE_MIB" "<" 20)"
row "" "  of which anonymous / file-backed" "$(mib "$RSS_IDLE_ANON_KIB") / $(mib "$RSS_IDLE_FILE_KIB") MiB" "" "" ""
row "" "  RSS after all the load (info)" "$(mib "$RSS_AFTER_KIB") MiB" "" "" ""
row "" "    of which anonymous" "$(mib "$RSS_AFTER_ANON_KIB") MiB" "" "" ""
echo
echo "bare argon2id hash rate before / after the sign-ins: $HASH_BEFORE / $HASH_AFTER per second"
echo "errors: discovery ${ERRS[discovery]}, jwks ${ERRS[jwks]}, token ${ERRS[token]}, introspect ${ERRS[introspect]}, sign-in ${LOGIN_ERRORS:-?} (non-200 responses / socket errors / failed flows)"
