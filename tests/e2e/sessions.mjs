// End-to-end test, sessions and published events (issue 12): one user signs in from two
// browsers (a Windows desktop and an iPhone, told apart by their User-Agent), sees both
// with their device names on /account/sessions, ends the other one, then "signs out
// everywhere else"; a relying party with a backchannel_logout_uri receives a logout
// token each time one of its sessions ends, verified as a real RP would (signature
// against the issuer's JWKS with `jose`, OIDC Back-Channel Logout 1.0 §2.6); and a
// webhook receiver gets signed LoginFailed and AccountLocked events after five wrong
// passwords on the real sign-in page, the Standard Webhooks signature checked with
// node:crypto.
//
// Logout tokens and webhooks are delivered by the server's outbox dispatcher (a round
// every couple of seconds), so every wait for them is a bounded poll.
//
// rp.mjs owns the browser, the relying party's redirect endpoint and the bookkeeping; it
// hands its helpers in (see sessionsFlow there). Configuration from the environment
// (run.sh sets it):
//   E2E_SESSIONS_USERNAME, E2E_SESSIONS_EMAIL, E2E_SESSIONS_PASSWORD
//                                                  the user on two devices
//   E2E_LOCK_USERNAME, E2E_LOCK_EMAIL              the user whose account gets locked
//   E2E_BCL_CLIENT_ID, E2E_BCL_CLIENT_SECRET, E2E_BCL_ALG
//                                                  a confidential client whose
//                                                  backchannel_logout_uri is
//                                                  http://127.0.0.1:E2E_HOOK_PORT/bcl
//   E2E_HOOK_PORT                                  this file's receiver (/bcl, /hook)
//   E2E_ADMIN_TOKEN                                an admin API token

import crypto from 'node:crypto';
import http from 'node:http';
import * as oidc from 'openid-client';
import * as jose from 'jose';

// Chrome on Windows and Safari on iPhone, as the issue's device table has them.
const WINDOWS_CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE_SAFARI_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
// What /account/sessions should call them ("browser major on platform").
const WINDOWS_NAME = 'Chrome 131 on Windows';
const IPHONE_NAME = 'Safari 17 on iOS';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// Outbox deliveries: the dispatcher runs every ~2 s; allow a few rounds and retries.
const DELIVERY_TIMEOUT_MS = 20_000;
const WRONG_PASSWORDS = 5;

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`missing environment variable ${name}`);
  return value;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------
// The receiver: POST /bcl (back-channel logout) and POST /hook (webhooks). Each request is
// kept with its raw body, which is what a webhook signature covers.

function startReceiver(port) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const path = new URL(req.url, 'http://receiver').pathname;
      received.push({ method: req.method, path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const known = req.method === 'POST' && (path === '/bcl' || path === '/hook');
      // OIDC Back-Channel Logout 1.0 §2.8: 200, no caching.
      res.writeHead(known ? 200 : 404, { 'cache-control': 'no-store' }).end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({ server, received }));
  });
}

// Polls `find` until it returns something truthy, for at most `ms`.
async function eventually(what, find, ms = DELIVERY_TIMEOUT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what}: nothing within ${ms} ms`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------

export async function sessionsAndEventsFlow(t) {
  const { check, checkEqual, require_, step, show, ISSUER, RP_BASE } = t;
  const username = env('E2E_SESSIONS_USERNAME');
  const email = env('E2E_SESSIONS_EMAIL');
  const password = env('E2E_SESSIONS_PASSWORD');
  const lockUsername = env('E2E_LOCK_USERNAME');
  const lockEmail = env('E2E_LOCK_EMAIL');
  const adminToken = env('E2E_ADMIN_TOKEN');
  const hookPort = Number(env('E2E_HOOK_PORT'));
  const c = {
    label: 'back-channel',
    id: env('E2E_BCL_CLIENT_ID'),
    secret: env('E2E_BCL_CLIENT_SECRET'),
    alg: env('E2E_BCL_ALG'),
  };
  const L = 'sessions';
  console.log(`\n# ${L}: ${username} on two devices, back-channel logout to ${c.id}, webhooks`);

  const { server, received } = await startReceiver(hookPort);
  try {
    const at = (path) => t.onIssuer(path);
    const desktop = await t.newPage({ userAgent: WINDOWS_CHROME_UA });
    const phone = await t.newPage({ userAgent: IPHONE_SAFARI_UA });

    async function typePassword(page) {
      await page.waitForURL(at('/login'));
      await page.locator('#username').fill(username);
      await page.locator('#password').fill(password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    }

    // The sessions page as the desktop sees it: one entry per session.
    async function listedSessions() {
      const items = desktop.locator('#sessions li.session');
      const out = [];
      for (let i = 0; i < (await items.count()); i += 1) {
        const item = items.nth(i);
        out.push({
          id: (await item.getAttribute('id')).replace(/^session-/, ''),
          device: (await item.locator('strong').innerText()).trim(),
          hint: await item.locator('.hint').innerText(),
          current: (await item.getAttribute('class')).split(/\s+/).includes('current'),
          thisDevice: (await item.locator('#this-device').count()) === 1,
        });
      }
      return out;
    }

    // A signed-out browser asking for its account page is sent to the sign-in page.
    async function checkSignedOut(label, page) {
      await page.goto(`${ISSUER}/account`);
      await page.waitForURL(at('/login'));
      check(`${label}: its next page load lands on /login`, t.onIssuer('/login')(new URL(page.url())), page.url());
    }

    // The phone signs in at the relying party: the sign-in page, consent if asked, the
    // code exchanged by openid-client. Returns the ID token's claims.
    async function phoneSignsInAtRp(label, config) {
      const request = await t.newAuthorizationRequest(config);
      const arrived = t.expectArrival('/cb');
      await phone.goto(request.url.href);
      await typePassword(phone);
      const arrival = await t.consentIfAsked(phone, arrived);
      t.checkAuthorizationResponse(label, arrival, request);
      const tokens = await t.exchange(config, arrival, request);
      return t.checkIdToken(label, c, tokens, request, email);
    }

    // ---- back-channel logout: verified as an RP would (OIDC Back-Channel Logout §2.6) --

    const logoutTokens = () => received.filter((r) => r.path === '/bcl');
    let jwks;
    const seenJti = new Set();

    async function verifyLogoutToken(label, request, idClaims) {
      checkEqual(`${label}: POSTed`, request.method, 'POST');
      check(
        `${label}: form-encoded`,
        String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded'),
        show(request.headers['content-type']),
      );
      const form = new URLSearchParams(request.body);
      const token = form.get('logout_token');
      require_(`${label}: the body carries logout_token`, typeof token === 'string' && token.length > 0, request.body.slice(0, 120));
      const header = jose.decodeProtectedHeader(token);
      checkEqual(`${label}: header typ`, header.typ, 'logout+jwt');
      checkEqual(`${label}: header alg is the client's ID token alg`, header.alg, c.alg);
      let verified;
      try {
        verified = await jose.jwtVerify(token, jwks, {
          issuer: ISSUER,
          audience: c.id,
          typ: 'logout+jwt',
          algorithms: [c.alg],
          requiredClaims: ['iss', 'aud', 'iat', 'exp', 'jti'],
          clockTolerance: 5,
        });
      } catch (err) {
        verified = err;
      }
      require_(
        `${label}: signature, iss, aud, iat and exp verify against the issuer's JWKS`,
        verified?.payload !== undefined,
        `${verified?.code ?? ''} ${verified?.message ?? ''}`,
      );
      const claims = verified.payload;
      checkEqual(`${label}: sub is the ID token's`, claims.sub, idClaims.sub);
      checkEqual(`${label}: sid is the ID token's`, claims.sid, idClaims.sid);
      check(
        `${label}: events has the back-channel logout event, an empty object`,
        claims.events !== null &&
          typeof claims.events === 'object' &&
          JSON.stringify(claims.events[BACKCHANNEL_LOGOUT_EVENT]) === '{}',
        show(claims.events),
      );
      check(`${label}: no nonce`, !('nonce' in claims), show(Object.keys(claims)));
      check(`${label}: a fresh jti`, typeof claims.jti === 'string' && !seenJti.has(claims.jti), show(claims.jti));
      seenJti.add(claims.jti);
      return claims;
    }

    // Waits for the logout token that names `sid`; earlier ones are left alone.
    async function logoutTokenFor(label, idClaims) {
      const request = await eventually(`${label}: a logout token for sid ${idClaims.sid}`, () =>
        logoutTokens().find((r) => {
          try {
            const token = new URLSearchParams(r.body).get('logout_token');
            return jose.decodeJwt(token).sid === idClaims.sid;
          } catch {
            return false;
          }
        }),
      );
      return verifyLogoutToken(label, request, idClaims);
    }

    const config = await step('a. the back-channel RP discovers the issuer', async () => {
      const config = await t.discover(c);
      const as = config.serverMetadata();
      checkEqual(`${L}: backchannel_logout_supported`, as.backchannel_logout_supported, true);
      checkEqual(`${L}: backchannel_logout_session_supported`, as.backchannel_logout_session_supported, true);
      jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
      return config;
    });

    await step('b. the desktop signs in on the sign-in page', async () => {
      await desktop.goto(`${ISSUER}/account/sessions`);
      await typePassword(desktop);
      await desktop.waitForURL(at('/account/sessions'));
      check(`${L}: the sign-in goes back to /account/sessions`, true);
    });

    const phoneFirst = await step('c. the phone signs in at the back-channel RP', async () =>
      phoneSignsInAtRp(`${L} phone`, config),
    );

    await step('d. /account/sessions on the desktop lists both devices', async () => {
      await desktop.goto(`${ISSUER}/account/sessions`);
      const listed = await listedSessions();
      checkEqual(`${L}: two sessions listed`, listed.length, 2);
      const mine = listed.find((s) => s.device === WINDOWS_NAME);
      const other = listed.find((s) => s.device === IPHONE_NAME);
      check(`${L}: the desktop is listed as ${show(WINDOWS_NAME)}`, mine !== undefined, show(listed.map((s) => s.device)));
      check(`${L}: the phone is listed as ${show(IPHONE_NAME)}`, other !== undefined, show(listed.map((s) => s.device)));
      require_(`${L}: both devices found`, mine && other);
      check(`${L}: the desktop says desktop`, /^desktop\b/.test(mine.hint), mine.hint);
      check(`${L}: the phone says mobile`, /^mobile\b/.test(other.hint), other.hint);
      check(`${L}: the desktop entry is marked this device`, mine.current && mine.thisDevice, show(mine));
      check(`${L}: the phone entry is not`, !other.current && !other.thisDevice, show(other));
      check(`${L}: "Sign out everywhere else" offered`, (await desktop.locator('#end-others').count()) === 1);
      console.log(`  note ${L}: listed ${show(listed.map((s) => `${s.device} (${s.hint})`))}`);
    });

    await step('e. the desktop ends the phone session; the phone is signed out', async () => {
      const listed = await listedSessions();
      const other = listed.find((s) => s.device === IPHONE_NAME);
      require_(`${L}: the phone is still listed`, other !== undefined, show(listed));
      await desktop.locator(`[id="end-${other.id}"]`).click();
      const notice = await desktop.locator('#notice').innerText();
      check(`${L}: the page confirms`, notice.includes('signed out'), notice);
      const after = await listedSessions();
      check(
        `${L}: only the desktop is left`,
        after.length === 1 && after[0].device === WINDOWS_NAME && after[0].current,
        show(after.map((s) => s.device)),
      );
      await checkSignedOut(`${L} phone`, phone);
    });

    await step('f. the RP receives a valid logout token for the ended phone session', async () => {
      await logoutTokenFor(`${L} logout token (revoked from the desktop)`, phoneFirst);
    });

    const phoneSecond = await step('g. the phone signs in again; the desktop signs out everywhere else', async () => {
      const claims = await phoneSignsInAtRp(`${L} phone again`, config);
      check(`${L}: a new session, a new sid`, claims.sid !== phoneFirst.sid, show(claims.sid));
      await desktop.goto(`${ISSUER}/account/sessions`);
      checkEqual(`${L}: two sessions listed again`, (await listedSessions()).length, 2);
      await desktop.locator('#end-others').click();
      const notice = await desktop.locator('#notice').innerText();
      check(`${L}: the page says one other session ended`, notice.includes('1 other session'), notice);
      const after = await listedSessions();
      check(`${L}: only this device is left`, after.length === 1 && after[0].current, show(after.map((s) => s.device)));
      check(`${L}: no "Sign out everywhere else" with nothing else`, (await desktop.locator('#end-others').count()) === 0);
      await checkSignedOut(`${L} phone (everywhere else)`, phone);
      return claims;
    });

    await step('h. the RP receives a logout token for that session too', async () => {
      await logoutTokenFor(`${L} logout token (everywhere else)`, phoneSecond);
    });

    await step('i. the desktop signs in at the RP and signs out there (RP-initiated logout)', async () => {
      const request = await t.newAuthorizationRequest(config);
      const arrived = t.expectArrival('/cb');
      await desktop.goto(request.url.href);
      const arrival = await t.consentIfAsked(desktop, arrived);
      t.checkAuthorizationResponse(`${L} desktop`, arrival, request);
      const tokens = await t.exchange(config, arrival, request);
      const claims = t.checkIdToken(`${L} desktop`, c, tokens, request, email);
      check(`${L}: the desktop session has its own sid`, claims.sid !== phoneFirst.sid && claims.sid !== phoneSecond.sid, show(claims.sid));

      const logoutState = oidc.randomState();
      const url = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: `${RP_BASE}/logged-out`,
        state: logoutState,
      });
      const back = t.expectArrival('/logged-out');
      await desktop.goto(url.href);
      const arrivalBack = await t.landed(desktop, back);
      checkEqual(`${L} desktop: logout echoes state`, arrivalBack.url.searchParams.get('state'), logoutState);
      await logoutTokenFor(`${L} logout token (RP-initiated logout)`, claims);
      await checkSignedOut(`${L} desktop`, desktop);
    });

    await step('j. one logout token per ended session, no more', async () => {
      // Anything stray would have been queued before the last token: give the
      // dispatcher one more round to show it.
      await sleep(2_500);
      checkEqual(`${L}: logout tokens received`, logoutTokens().length, 3);
    });
    await desktop.context().close();
    await phone.context().close();

    // ---- webhooks: five wrong passwords on the sign-in page -----------------------------

    const W = 'webhook';
    const hook = await step('k. an admin registers a webhook for LoginFailed and AccountLocked', async () => {
      const response = await fetch(`${ISSUER}/api/admin/v1/webhooks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          url: `http://127.0.0.1:${hookPort}/hook`,
          events: ['LoginFailed', 'AccountLocked'],
          description: 'e2e security monitor',
        }),
        signal: AbortSignal.timeout(t.STEP_TIMEOUT_MS),
      });
      const body = await response.json().catch(() => ({}));
      require_(`${W}: created (201)`, response.status === 201, `${response.status} ${show(body)}`);
      const secret = String(body.secret ?? '');
      check(`${W}: the secret is whsec_ and 32 bytes of base64`, /^whsec_/.test(secret) && Buffer.from(secret.slice(6), 'base64').length === 32, `${secret.slice(0, 6)}… (${secret.length} chars)`);
      checkEqual(`${W}: the webhook keeps its event filter`, show(body.webhook?.events), show(['LoginFailed', 'AccountLocked']));
      return { id: body.webhook?.id, secret };
    });

    // Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> under the
    // base64-decoded part of the secret after "whsec_"; several may be space-separated.
    function signatureValid(request) {
      const id = request.headers['webhook-id'];
      const timestamp = request.headers['webhook-timestamp'];
      const signatures = String(request.headers['webhook-signature'] ?? '').split(' ');
      const key = Buffer.from(hook.secret.slice('whsec_'.length), 'base64');
      const expected = Buffer.from(
        `v1,${crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest('base64')}`,
      );
      return signatures.some((s) => {
        const candidate = Buffer.from(s);
        return candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected);
      });
    }

    const wrongPassword = `Not-${crypto.randomBytes(6).toString('hex')}-Right7`;
    await step(`l. ${WRONG_PASSWORDS} wrong passwords for ${lockUsername} on the sign-in page`, async () => {
      const page = await t.newPage();
      for (let attempt = 1; attempt <= WRONG_PASSWORDS; attempt += 1) {
        await page.goto(`${ISSUER}/login`);
        await page.locator('#username').fill(lockUsername);
        await page.locator('#password').fill(wrongPassword);
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        const error = await page.locator('#login-error').innerText();
        if (attempt < WRONG_PASSWORDS) {
          check(`${W}: wrong password ${attempt} refused`, error.length > 0 && !/locked/i.test(error), error);
        } else {
          check(`${W}: the fifth locks the account`, /locked/i.test(error), error);
          console.log(`  note ${W}: the page said ${show(error)}`);
        }
      }
      await page.context().close();
    });

    await step('m. the receiver gets signed LoginFailed ×5 and AccountLocked', async () => {
      const hooks = () => received.filter((r) => r.path === '/hook');
      const parsed = () =>
        hooks().map((r) => {
          try {
            return { request: r, event: JSON.parse(r.body) };
          } catch {
            return { request: r, event: {} };
          }
        });
      const forUser = (type) => parsed().filter((p) => p.event.type === type && p.event.data?.email === lockEmail);
      await eventually(`${W}: ${WRONG_PASSWORDS} LoginFailed and one AccountLocked`, () =>
        forUser('LoginFailed').length >= WRONG_PASSWORDS && forUser('AccountLocked').length >= 1,
      ).catch((err) => {
        check(`${W}: deliveries arrived`, false, `${err.message}; got ${show(parsed().map((p) => p.event.type))}`);
        throw err;
      });
      const all = parsed();
      const now = Math.floor(Date.now() / 1000);
      for (const { request, event } of all) {
        const tag = `${W} ${event.type ?? '?'} ${request.headers['webhook-id']}`;
        check(`${tag}: signature verifies`, signatureValid(request), show(request.headers['webhook-signature']));
        const ts = Number(request.headers['webhook-timestamp']);
        check(`${tag}: webhook-timestamp is now (±5 min)`, Number.isInteger(ts) && Math.abs(now - ts) <= 300, show(request.headers['webhook-timestamp']));
        check(`${tag}: no password in the payload`, !request.body.includes(wrongPassword));
      }
      check(`${W}: only the events asked for`, all.every((p) => ['LoginFailed', 'AccountLocked'].includes(p.event.type)), show(all.map((p) => p.event.type)));
      const ids = all.map((p) => p.request.headers['webhook-id']);
      checkEqual(`${W}: one webhook-id per delivery`, new Set(ids).size, ids.length);

      const failed = forUser('LoginFailed').map((p) => p.event.data);
      checkEqual(`${W}: LoginFailed count`, failed.length, WRONG_PASSWORDS);
      checkEqual(`${W}: LoginFailed attempts 1..5`, show(failed.map((d) => d.attempts).sort()), show([1, 2, 3, 4, 5]));
      check(`${W}: LoginFailed reason says wrong password`, failed.every((d) => d.reason === 'wrong password'), show(failed.map((d) => d.reason)));
      check(`${W}: LoginFailed carries the client address`, failed.every((d) => typeof d.ipAddress === 'string' && d.ipAddress.length > 0), show(failed.map((d) => d.ipAddress)));
      const locked = forUser('AccountLocked').map((p) => p.event.data);
      checkEqual(`${W}: one AccountLocked`, locked.length, 1);
      check(`${W}: AccountLocked names the user`, typeof locked[0].userId === 'string' && locked[0].userId.length > 0, show(locked[0]));
      const until = Date.parse(locked[0].lockedUntil ?? '');
      check(`${W}: AccountLocked lockedUntil about 15 minutes ahead`, Math.abs(until - Date.now() - 15 * 60_000) < 120_000, show(locked[0].lockedUntil));
    });

    await step('n. the admin API lists the deliveries as delivered with 200', async () => {
      const response = await fetch(`${ISSUER}/api/admin/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries`, {
        headers: { authorization: `Bearer ${adminToken}` },
        signal: AbortSignal.timeout(t.STEP_TIMEOUT_MS),
      });
      const body = await response.json().catch(() => ({}));
      require_(`${W}: deliveries listed (200)`, response.status === 200, `${response.status} ${show(body)}`);
      const items = Array.isArray(body.items) ? body.items : [];
      checkEqual(`${W}: deliveries listed`, items.length, WRONG_PASSWORDS + 1);
      check(`${W}: each delivered with 200`, items.every((d) => d.status === 'delivered' && d.response_code === 200), show(items.map((d) => [d.status, d.response_code])));
    });
  } finally {
    server.close();
  }
}
