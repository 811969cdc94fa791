#!/usr/bin/env bash
# End-to-end test: builds Latchkey, starts it on a free port with a fresh SQLite database,
# registers four users, four relying parties and an admin API token with the CLI, then lets
# rp.mjs (openid-client in headless Chromium) sign in through the real pages; its last
# flows come from mfa.mjs (two-step verification) and sessions.mjs (sessions on two
# devices, back-channel logout, webhooks). Exits with rp.mjs's status.
#
#   bash tests/e2e/run.sh
#
# Needs node 20.19+ (otpauth's @noble/hashes asks for it), npm, and Chromium at
# /usr/bin/chromium (or E2E_CHROMIUM).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/debug/latchkey"

log() { printf 'e2e: %s\n' "$*"; }

# Latchkey rejects unknown LATCHKEY_* variables, and whatever the caller has set (a CI
# database URL, say) is not meant for this server: start from a clean slate.
for name in $(compgen -e); do
  case "$name" in LATCHKEY_*) unset "$name" ;; esac
done

log "building"
(cd "$ROOT" && cargo build --bin latchkey)

if [[ ! -d "$E2E_DIR/node_modules/openid-client" || ! -d "$E2E_DIR/node_modules/playwright-core" \
      || ! -d "$E2E_DIR/node_modules/otpauth" || ! -d "$E2E_DIR/node_modules/jose" ]]; then
  log "installing node packages"
  if [[ -f "$E2E_DIR/package-lock.json" ]]; then
    (cd "$E2E_DIR" && npm ci --no-audit --no-fund)
  else
    (cd "$E2E_DIR" && npm install --no-audit --no-fund)
  fi
fi

CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "e2e: no Chromium at $CHROMIUM (apt-get install chromium, or set E2E_CHROMIUM)" >&2
  exit 1
fi

free_port() {
  node -e '
    const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

http_ok() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));' "$1"
}

DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-e2e.XXXXXX")"
SERVER_PID=""
SINK_PID=""

cleanup() {
  local status=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$SINK_PID" ]]; then kill "$SINK_PID" 2>/dev/null || true; fi
  if [[ $status -ne 0 && -f "$DATA_DIR/serve.log" ]]; then
    echo "e2e: last lines of the server log:" >&2
    grep -v 'password:' "$DATA_DIR/serve.log" | tail -n 40 >&2 || true
  fi
  rm -rf "$DATA_DIR"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(free_port)"
RP_PORT="$(free_port)"
while [[ "$RP_PORT" == "$PORT" ]]; do RP_PORT="$(free_port)"; done
# sessions.mjs's receiver for back-channel logout tokens and webhooks.
HOOK_PORT="$(free_port)"
while [[ "$HOOK_PORT" == "$PORT" || "$HOOK_PORT" == "$RP_PORT" ]]; do HOOK_PORT="$(free_port)"; done

# A real SMTP server for the registration flow: the one the Rust tests use (aiosmtpd in a
# venv under target/). It lives while its stdin, the coprocess pipe, stays open.
SMTP_VENV="$TARGET_DIR/test-smtp-venv"
if ! "$SMTP_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  log "installing aiosmtpd into $SMTP_VENV"
  python3 -m venv "$SMTP_VENV"
  "$SMTP_VENV/bin/pip" install --quiet aiosmtpd
fi
MAILDIR="$DATA_DIR/mail"
mkdir -p "$MAILDIR"
coproc SINK { exec "$SMTP_VENV/bin/python" "$ROOT/tests/smtp/sink.py" "$MAILDIR"; }
SINK_PID=$SINK_PID
read -r _ SMTP_PORT <&"${SINK[0]}"
log "SMTP sink on 127.0.0.1:$SMTP_PORT"

export LATCHKEY_DATA_DIR="$DATA_DIR"
export LATCHKEY_REGISTRATION_MODE=open
export LATCHKEY_MAIL_TRANSPORT=smtp
export LATCHKEY_SMTP_HOST=127.0.0.1
export LATCHKEY_SMTP_PORT="$SMTP_PORT"
export LATCHKEY_SMTP_TLS=none
export LATCHKEY_SMTP_USERNAME=latchkey
export LATCHKEY_SMTP_PASSWORD=sink-secret
export E2E_MAILDIR="$MAILDIR"
export LATCHKEY_LISTEN="127.0.0.1:$PORT"
export LATCHKEY_ISSUER="http://localhost:$PORT"
export LATCHKEY_LOG="${E2E_LATCHKEY_LOG:-warn}"

log "starting latchkey on $LATCHKEY_ISSUER (data in $DATA_DIR)"
# The first run prints the admin password to stdout: it goes to the log, which is deleted.
"$BIN" serve >"$DATA_DIR/serve.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "e2e: latchkey exited during start-up" >&2
    exit 1
  fi
  if http_ok "http://127.0.0.1:$PORT/healthz"; then
    ready=yes
    break
  fi
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "e2e: latchkey did not answer /healthz within 30 s" >&2
  exit 1
fi

# The server has migrated the database; the CLI uses the same one through the same env.
E2E_USERNAME="e2e-alice"
E2E_EMAIL="e2e-alice@example.com"
# Random, plus one character of each class the password policy asks for.
E2E_PASSWORD="$(node -e 'console.log(require("node:crypto").randomBytes(18).toString("base64url") + "-7aZ")')"
printf '%s\n' "$E2E_PASSWORD" \
  | "$BIN" user create --username "$E2E_USERNAME" --email "$E2E_EMAIL" --password-stdin >/dev/null
# A second user, without any second factor yet: the two-step flow (mfa.mjs) sets up an
# authenticator app, backup codes and a passkey for it through the pages.
E2E_MFA_USERNAME="e2e-bob"
E2E_MFA_EMAIL="e2e-bob@example.com"
E2E_MFA_PASSWORD="$(node -e 'console.log(require("node:crypto").randomBytes(18).toString("base64url") + "-8bY")')"
printf '%s\n' "$E2E_MFA_PASSWORD" \
  | "$BIN" user create --username "$E2E_MFA_USERNAME" --email "$E2E_MFA_EMAIL" --password-stdin >/dev/null

# sessions.mjs: one user signs in from two browsers; another gets locked out by five
# wrong passwords (typed by the script, so no password of its own is needed here).
E2E_SESSIONS_USERNAME="e2e-carol"
E2E_SESSIONS_EMAIL="e2e-carol@example.com"
E2E_SESSIONS_PASSWORD="$(node -e 'console.log(require("node:crypto").randomBytes(18).toString("base64url") + "-9cX")')"
printf '%s\n' "$E2E_SESSIONS_PASSWORD" \
  | "$BIN" user create --username "$E2E_SESSIONS_USERNAME" --email "$E2E_SESSIONS_EMAIL" --password-stdin >/dev/null
E2E_LOCK_USERNAME="e2e-dave"
E2E_LOCK_EMAIL="e2e-dave@example.com"
node -e 'console.log(require("node:crypto").randomBytes(18).toString("base64url") + "-6dW")' \
  | "$BIN" user create --username "$E2E_LOCK_USERNAME" --email "$E2E_LOCK_EMAIL" --password-stdin >/dev/null

json_field() {
  node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const v = JSON.parse(s)[process.argv[1]];
      if (typeof v !== "string" || v === "") { console.error("no " + process.argv[1] + " in " + s); process.exit(1); }
      console.log(v);
    });' "$1"
}

RP="http://localhost:$RP_PORT"

conf_json="$("$BIN" client create --name "E2E RP" \
  --redirect-uri "$RP/cb" --post-logout-redirect-uri "$RP/logged-out" --json)"
public_json="$("$BIN" client create --name "E2E public RP" --public --id-token-alg EdDSA \
  --redirect-uri "$RP/cb" --post-logout-redirect-uri "$RP/logged-out" --json)"
post_json="$("$BIN" client create --name "E2E first-party RP" --auth-method client_secret_post \
  --first-party --id-token-alg RS256 --redirect-uri "$RP/cb" --json)"
# A relying party told of every end of its sessions (OIDC Back-Channel Logout 1.0).
bcl_json="$("$BIN" client create --name "E2E back-channel RP" --id-token-alg EdDSA \
  --redirect-uri "$RP/cb" --post-logout-redirect-uri "$RP/logged-out" \
  --backchannel-logout-uri "http://127.0.0.1:$HOOK_PORT/bcl" --json)"
# The first run made the admin (LATCHKEY_INITIAL_ADMIN_USERNAME, default admin); its token
# registers the webhook through the admin API.
admin_json="$("$BIN" admin-token create --username admin --name e2e --expires-in-days 1 --json)"

export E2E_ISSUER="$LATCHKEY_ISSUER"
export E2E_RP_PORT="$RP_PORT"
export E2E_USERNAME E2E_EMAIL E2E_PASSWORD
export E2E_MFA_USERNAME E2E_MFA_EMAIL E2E_MFA_PASSWORD
export E2E_CHROMIUM="$CHROMIUM"
E2E_CONF_CLIENT_ID="$(json_field client_id <<<"$conf_json")"
E2E_CONF_CLIENT_SECRET="$(json_field client_secret <<<"$conf_json")"
E2E_PUBLIC_CLIENT_ID="$(json_field client_id <<<"$public_json")"
E2E_POST_CLIENT_ID="$(json_field client_id <<<"$post_json")"
E2E_POST_CLIENT_SECRET="$(json_field client_secret <<<"$post_json")"
export E2E_CONF_CLIENT_ID E2E_CONF_CLIENT_SECRET E2E_PUBLIC_CLIENT_ID E2E_POST_CLIENT_ID E2E_POST_CLIENT_SECRET
export E2E_CONF_ALG=ES256 E2E_PUBLIC_ALG=EdDSA E2E_POST_ALG=RS256
E2E_BCL_CLIENT_ID="$(json_field client_id <<<"$bcl_json")"
E2E_BCL_CLIENT_SECRET="$(json_field client_secret <<<"$bcl_json")"
E2E_ADMIN_TOKEN="$(json_field token <<<"$admin_json")"
export E2E_BCL_CLIENT_ID E2E_BCL_CLIENT_SECRET E2E_BCL_ALG=EdDSA E2E_ADMIN_TOKEN
export E2E_HOOK_PORT="$HOOK_PORT"
export E2E_SESSIONS_USERNAME E2E_SESSIONS_EMAIL E2E_SESSIONS_PASSWORD E2E_LOCK_USERNAME E2E_LOCK_EMAIL

set +e
# The console first: the sessions flow in rp.mjs ends with five wrong passwords, which
# block sign-ins from this address (R022) for 15 minutes.
log "running the admin console"
E2E_ADMIN_USERNAME=e2e-root E2E_ADMIN_PASSWORD="$E2E_PASSWORD-admin" bash -c 'printf "%s\n" "$E2E_ADMIN_PASSWORD" | "$0" user create --username "$E2E_ADMIN_USERNAME" --email e2e-root@example.com --role admin --password-stdin >/dev/null && node "$1/admin.mjs"' "$BIN" "$E2E_DIR"
status=$?
log "running the relying party"
node "$E2E_DIR/rp.mjs" || status=1
set -e
exit $status
