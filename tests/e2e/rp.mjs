// End-to-end test: an independent relying party (openid-client v6) signs a user in
// through Latchkey's real pages in headless Chromium.
//
// Everything protocol-related goes through openid-client's public API: discovery, the
// authorization URL (PKCE, state, nonce), the code exchange with ID token validation,
// userinfo, refresh, introspection, revocation and the RP-initiated logout URL. The
// browser only does what a person would do: open a URL, type, click. The redirect URI is
// served by a small HTTP server in this process, so the authorization response travels
// exactly as it would to a real relying party.
//
// Configuration comes from the environment (run.sh sets it):
//   E2E_ISSUER, E2E_RP_PORT, E2E_USERNAME, E2E_PASSWORD, E2E_EMAIL,
//   E2E_CONF_CLIENT_ID, E2E_CONF_CLIENT_SECRET   confidential, client_secret_basic, ES256
//   E2E_PUBLIC_CLIENT_ID, E2E_PUBLIC_ALG          public (none + PKCE)
//   E2E_POST_CLIENT_ID, E2E_POST_CLIENT_SECRET, E2E_POST_ALG
//                                                 confidential, client_secret_post,
//                                                 first-party, response_mode=form_post
//   E2E_MFA_USERNAME, E2E_MFA_PASSWORD, E2E_MFA_EMAIL
//                                                 a second user, for the two-step flow
//                                                 in mfa.mjs
//   E2E_SESSIONS_*, E2E_LOCK_*, E2E_BCL_*, E2E_HOOK_PORT, E2E_ADMIN_TOKEN
//                                                 sessions, back-channel logout and
//                                                 webhooks in sessions.mjs (see there)
//   optional: E2E_FLOWS (comma-separated flow function names: run only those),
//   E2E_CHROMIUM (default /usr/bin/chromium), E2E_SCREENSHOT
//   (default /tmp/e2e-consent.png), E2E_FAILURE_SCREENSHOT (default /tmp/e2e-failure.png)

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as oidc from 'openid-client';
import { chromium } from 'playwright-core';
import { mfaFlow } from './mfa.mjs';
import { sessionsAndEventsFlow } from './sessions.mjs';

// ---------------------------------------------------------------------------------------
// Configuration

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    console.error(`e2e: missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const ISSUER = env('E2E_ISSUER');
const RP_PORT = Number(env('E2E_RP_PORT'));
const RP_BASE = `http://localhost:${RP_PORT}`;
const REDIRECT_URI = `${RP_BASE}/cb`;
const POST_LOGOUT_URI = `${RP_BASE}/logged-out`;
const USERNAME = env('E2E_USERNAME');
const PASSWORD = env('E2E_PASSWORD');
const EMAIL = env('E2E_EMAIL');
const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const CONSENT_SHOT = env('E2E_SCREENSHOT', '/tmp/e2e-consent.png');
const FAILURE_SHOT = env('E2E_FAILURE_SCREENSHOT', '/tmp/e2e-failure.png');

const CLIENTS = {
  confidential: {
    label: 'confidential',
    id: env('E2E_CONF_CLIENT_ID'),
    secret: env('E2E_CONF_CLIENT_SECRET'),
    alg: env('E2E_CONF_ALG', 'ES256'),
  },
  public: {
    label: 'public',
    id: env('E2E_PUBLIC_CLIENT_ID'),
    alg: env('E2E_PUBLIC_ALG', 'ES256'),
  },
  post: {
    label: 'client_secret_post',
    id: env('E2E_POST_CLIENT_ID'),
    secret: env('E2E_POST_CLIENT_SECRET'),
    alg: env('E2E_POST_ALG', 'ES256'),
  },
};

// Every browser wait is bounded; the whole run is too.
const STEP_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 210_000;

// ---------------------------------------------------------------------------------------
// Bookkeeping: each check is counted; a thrown error aborts the current flow only.

let passed = 0;
let failed = 0;

function check(name, condition, detail) {
  if (condition) {
    passed += 1;
    console.log(`  ok   ${name}`);
  } else {
    failed += 1;
    console.log(`  FAIL ${name}${detail === undefined ? '' : `: ${detail}`}`);
  }
  return Boolean(condition);
}

function show(value) {
  return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value, null, 0);
}

function checkEqual(name, actual, expected) {
  return check(name, actual === expected, `expected ${show(expected)}, got ${show(actual)}`);
}

class FlowAborted extends Error {}

// Like check(), but the flow cannot go on without it.
function require_(name, condition, detail) {
  if (!check(name, condition, detail)) throw new FlowAborted(name);
}

function describeError(err) {
  if (err instanceof oidc.ResponseBodyError) {
    return `${err.name}: ${err.error}${err.error_description ? ` (${err.error_description})` : ''} [HTTP ${err.status}]`;
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return `${err.name}: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`;
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const schemes = err.cause?.map?.((c) => c.scheme).join(', ');
    return `${err.name}: HTTP ${err.status} with a WWW-Authenticate challenge (${schemes}): the server refused the client's credentials or token`;
  }
  const cause = err?.cause ? ` (cause: ${err.cause?.message ?? JSON.stringify(err.cause)})` : '';
  const code = err?.code ? ` [${err.code}]` : '';
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${code}${cause}`;
}

// Runs a step; an exception is one failed check and ends the flow.
async function step(name, fn) {
  console.log(`- ${name}`);
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof FlowAborted)) {
      check(`${name} completed`, false, describeError(err));
    }
    throw new FlowAborted(name);
  }
}

function decodeJwtPart(jwt, index) {
  const part = String(jwt).split('.')[index];
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

const nowSecs = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------
// The relying party's redirect endpoints: GET /cb (query), POST /cb (form_post),
// GET /logged-out. Each arrival is handed to whoever is waiting for that path.

const waiting = []; // { path, resolve }
const unexpected = [];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const rpServer = http.createServer(async (req, res) => {
  const url = new URL(req.url, RP_BASE);
  if (url.pathname === '/logout-form' && req.method === 'GET') {
    // An RP page that logs out by an auto-submitted form POST to the end-session
    // endpoint. Served as http://127.0.0.1:..., another site than the issuer (localhost),
    // so the browser sends the POST without Latchkey's SameSite=Lax session cookie.
    const fields = [...url.searchParams]
      .filter(([name]) => name !== 'action')
      .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
      .join('');
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(
        `<!doctype html><title>RP logout</title><form id="f" method="post" action="${escapeHtml(url.searchParams.get('action'))}">${fields}</form>` +
          '<script>document.getElementById("f").submit()</script>',
      );
    return;
  }
  const known = url.pathname === '/cb' || url.pathname === '/logged-out';
  if (!known || !['GET', 'POST'].includes(req.method)) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  const body = req.method === 'POST' ? await readBody(req) : '';
  const arrival = {
    method: req.method,
    url,
    body,
    contentType: req.headers['content-type'] ?? '',
  };
  const index = waiting.findIndex((w) => w.path === url.pathname);
  if (index >= 0) {
    const [waiter] = waiting.splice(index, 1);
    waiter.resolve(arrival);
  } else {
    unexpected.push(`${req.method} ${url.href}`);
  }
  res
    .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    .end('<!doctype html><title>RP</title><p id="rp">relying party received the response</p>');
});

// Call before triggering the navigation that should arrive at `path`.
function expectArrival(path) {
  let waiter;
  const arrived = new Promise((resolve) => {
    waiter = { path, resolve };
    waiting.push(waiter);
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const i = waiting.indexOf(waiter);
      if (i >= 0) waiting.splice(i, 1);
      reject(new Error(`nothing arrived at ${RP_BASE}${path} within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
  });
  const result = Promise.race([arrived, timeout]).finally(() => clearTimeout(timer));
  // A flow that aborts before awaiting this must not crash the run with an unhandled
  // rejection; whoever awaits it still sees the timeout.
  result.catch(() => {});
  return result;
}

// What openid-client takes as "the current URL": a URL for a query response, a Request
// carrying the posted form for form_post.
function asAuthorizationResponse(arrival) {
  if (arrival.method === 'POST') {
    return new Request(arrival.url.href, {
      method: 'POST',
      headers: { 'content-type': arrival.contentType },
      body: arrival.body,
    });
  }
  return arrival.url;
}

function responseParams(arrival) {
  return arrival.method === 'POST' ? new URLSearchParams(arrival.body) : arrival.url.searchParams;
}

// ---------------------------------------------------------------------------------------
// Browser helpers

let browser;

// `contextOptions`: Playwright's browser context options (a `userAgent`, say); each page
// is a separate browser, with its own cookies.
async function newPage(contextOptions = {}) {
  const context = await browser.newContext({ locale: 'en-US', ...contextOptions });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  // Every top-level document the browser asks for, so a flow can prove which pages it saw.
  page.navigations = [];
  page.on('request', (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      page.navigations.push(new URL(request.url()));
    }
  });
  return page;
}

const issuerOrigin = new URL(ISSUER).origin;
const onIssuer = (path) => (url) => url.origin === issuerOrigin && url.pathname === path;

function pagesSeen(page, from) {
  return page.navigations
    .slice(from)
    .filter((u) => u.origin === issuerOrigin)
    .map((u) => u.pathname);
}

// The relying party has the response once its server saw the request; the browser is
// done with it once the page there has loaded (a navigation before that would be cut).
async function landed(page, arrived) {
  const arrival = await arrived;
  await page.waitForURL((u) => u.origin === RP_BASE);
  return arrival;
}

// After the sign-in the authorization goes on: consent when the client has none
// remembered for this user, then the redirect to the relying party.
async function consentIfAsked(page, arrived) {
  const consent = page.waitForURL(onIssuer('/consent')).then(() => 'consent', () => 'none');
  const first = await Promise.race([arrived.then(() => 'arrived'), consent]);
  if (first === 'consent') {
    await page.locator('button[name=decision][value=allow]').click();
  }
  return landed(page, arrived);
}

async function signIn(page) {
  await page.waitForURL(onIssuer('/login'));
  await page.locator('#username').fill(USERNAME);
  await page.locator('#password').fill(PASSWORD);
  await page.locator('input[name=remember_me]').check();
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

// ---------------------------------------------------------------------------------------
// openid-client helpers

async function discover(c) {
  const metadata = { id_token_signed_response_alg: c.alg };
  let auth;
  if (c === CLIENTS.public) {
    metadata.token_endpoint_auth_method = 'none';
    auth = oidc.None();
  } else if (c === CLIENTS.post) {
    metadata.client_secret = c.secret;
    metadata.token_endpoint_auth_method = 'client_secret_post';
    auth = oidc.ClientSecretPost(c.secret);
  } else {
    metadata.client_secret = c.secret;
    metadata.token_endpoint_auth_method = 'client_secret_basic';
    auth = oidc.ClientSecretBasic(c.secret);
  }
  // Latchkey runs on plain http://localhost here; openid-client refuses that unless told.
  return oidc.discovery(new URL(ISSUER), c.id, metadata, auth, {
    execute: [oidc.allowInsecureRequests],
  });
}

// A fresh authorization request: PKCE (S256), state and nonce.
async function newAuthorizationRequest(config, extra = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

async function exchange(config, arrival, request) {
  return oidc.authorizationCodeGrant(config, asAuthorizationResponse(arrival), {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  });
}

function checkAuthorizationResponse(label, arrival, request) {
  const params = responseParams(arrival);
  check(`${label}: response carries a code`, Boolean(params.get('code')), arrival.url.href);
  checkEqual(`${label}: response echoes state`, params.get('state'), request.state);
  checkEqual(`${label}: response carries iss (RFC 9207)`, params.get('iss'), ISSUER);
}

function checkIdToken(label, c, tokens, request, email = EMAIL) {
  const claims = tokens.claims();
  require_(`${label}: ID token returned`, claims !== undefined);
  const header = decodeJwtPart(tokens.id_token, 0);
  checkEqual(`${label}: ID token alg`, header.alg, c.alg);
  check(`${label}: ID token has kid`, typeof header.kid === 'string' && header.kid.length > 0, show(header));
  checkEqual(`${label}: ID token iss`, claims.iss, ISSUER);
  check(
    `${label}: ID token aud contains client_id`,
    claims.aud === c.id || (Array.isArray(claims.aud) && claims.aud.includes(c.id)),
    show(claims.aud),
  );
  check(`${label}: ID token sub present`, typeof claims.sub === 'string' && claims.sub.length > 0, show(claims.sub));
  checkEqual(`${label}: ID token nonce`, claims.nonce, request.nonce);
  check(
    `${label}: ID token auth_time present and not in the future`,
    Number.isInteger(claims.auth_time) && claims.auth_time <= nowSecs() + 5,
    show(claims.auth_time),
  );
  check(`${label}: ID token at_hash present`, typeof claims.at_hash === 'string' && claims.at_hash.length > 0, show(claims.at_hash));
  check(`${label}: ID token exp after iat`, claims.exp > claims.iat, `iat=${claims.iat} exp=${claims.exp}`);
  check(`${label}: ID token sid present`, typeof claims.sid === 'string' && claims.sid.length > 0, show(claims.sid));
  check(`${label}: ID token acr present`, typeof claims.acr === 'string' && claims.acr.length > 0, show(claims.acr));
  check(`${label}: ID token amr is a non-empty array`, Array.isArray(claims.amr) && claims.amr.length > 0, show(claims.amr));
  if (claims.azp !== undefined) checkEqual(`${label}: ID token azp`, claims.azp, c.id);
  // Email: OIDC Core §5.4 returns scope claims from userinfo when an access token is
  // issued, so the ID token need not carry it; when it does, it must be right.
  if (claims.email !== undefined) checkEqual(`${label}: ID token email`, claims.email, email);
  else console.log(`  note ${label}: ID token has no email claim (it comes from userinfo, OIDC Core §5.4)`);
  return claims;
}

function checkAccessToken(label, tokens) {
  check(`${label}: access token present`, typeof tokens.access_token === 'string', show(tokens.access_token));
  checkEqual(`${label}: token_type`, String(tokens.token_type).toLowerCase(), 'bearer');
  check(`${label}: expires_in positive`, tokens.expiresIn() > 0, show(tokens.expires_in));
  const header = decodeJwtPart(tokens.access_token, 0);
  checkEqual(`${label}: access token typ`, String(header.typ).toLowerCase(), 'at+jwt');
}

async function checkUserInfo(label, config, accessToken, sub) {
  // fetchUserInfo itself refuses a response whose sub differs from the expected one.
  const info = await oidc.fetchUserInfo(config, accessToken, sub);
  checkEqual(`${label}: userinfo sub`, info.sub, sub);
  checkEqual(`${label}: userinfo email`, info.email, EMAIL);
  checkEqual(`${label}: userinfo preferred_username`, info.preferred_username, USERNAME);
  return info;
}

// ---------------------------------------------------------------------------------------
// Flow 4: a new person registers on the pages, confirms the emailed link, and signs in
// at a relying party. The mail goes through a real SMTP server (tests/smtp/sink.py).

const MAILDIR = env('E2E_MAILDIR');

async function waitForMail(address) {
  const dir = path.join(MAILDIR, address.toLowerCase());
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
    if (files.length > 0) return JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no mail for ${address} within ${STEP_TIMEOUT_MS} ms`);
}

async function registrationFlow() {
  const c = CLIENTS.confidential;
  const L = 'registration';
  const username = `e2e-new-${Date.now().toString(36)}`;
  const email = `${username}@example.com`;
  const password = `Reg-${Date.now().toString(36)}-Chromium!9`;
  console.log(`\n# ${L}: ${username} registers, verifies by email, signs in at the RP`);
  const page = await newPage();

  await step('a. register on the page', async () => {
    await page.goto(`${ISSUER}/login`);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL(onIssuer('/register'));
    await page.locator('#username').fill(username);
    await page.locator('#email').fill(email);
    await page.locator('#first_name').fill('Nova');
    await page.locator('#password').fill('password');
    await page.getByRole('button', { name: 'Create account' }).click();
    const refused = await page.locator('#form-error').innerText();
    check(`${L}: a weak password is refused by rule`, refused.includes('password'), refused);
    await page.locator('#password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    const notice = await page.locator('#notice').innerText();
    check(`${L}: the page says where the email went`, notice.includes(email), notice);
  });

  await step('b. signing in before verifying is refused', async () => {
    await page.goto(`${ISSUER}/login`);
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const error = await page.locator('#login-error').innerText();
    check(`${L}: pending account is told to confirm the email`, error.includes('Confirm your email'), error);
  });

  await step('c. the emailed link verifies the account', async () => {
    const mail = await waitForMail(email);
    check(`${L}: mail has a subject`, mail.subject.includes('Verify'), mail.subject);
    const link = mail.text.match(/https?:\/\/\S+\/verify-email\?token=\S+/)?.[0];
    require_(`${L}: mail carries a verification link`, Boolean(link), mail.text.slice(0, 300));
    check(`${L}: mail carries a 6-digit code`, /\b\d{6}\b/.test(mail.text), mail.text.slice(0, 300));
    check(`${L}: mail has an HTML part with the link`, mail.html.includes('verify-email?token='), mail.html.slice(0, 200));
    await page.goto(link);
    await page.getByRole('button', { name: 'Confirm my email address' }).click();
    await page.getByRole('heading', { name: 'Email confirmed' }).waitFor();
    check(`${L}: confirmation page shown`, true);
  });

  const config = await discover(c);
  const request = await newAuthorizationRequest(config, { prompt: 'login' });
  const arrival = await step('d. sign in at the relying party with the new account', async () => {
    const arrived = expectArrival('/cb');
    await page.goto(request.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('#username').fill(email);
    await page.locator('#password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    await page.locator('button[name=decision][value=allow]').click();
    const arrival = await arrived;
    checkAuthorizationResponse(L, arrival, request);
    return arrival;
  });

  await step('e. the ID token names the new account', async () => {
    const tokens = await exchange(config, arrival, request);
    const claims = tokens.claims();
    checkEqual(`${L}: preferred_username`, claims.preferred_username, username);
    checkEqual(`${L}: email`, claims.email, email);
    checkEqual(`${L}: email_verified`, claims.email_verified, true);
  });
  await page.context().close();
}

// ---------------------------------------------------------------------------------------
// Flow 1: confidential client (client_secret_basic), the whole lifecycle.

async function confidentialFlow() {
  const c = CLIENTS.confidential;
  const L = c.label;
  console.log(`\n# ${L} client ${c.id} (client_secret_basic, ${c.alg}, consent)`);

  const config = await step('a. discovery', async () => {
    const config = await discover(c);
    const as = config.serverMetadata();
    checkEqual(`${L}: discovered issuer`, as.issuer, ISSUER);
    check(`${L}: S256 advertised`, as.code_challenge_methods_supported?.includes('S256'), show(as.code_challenge_methods_supported));
    check(`${L}: RFC 9207 iss advertised`, as.authorization_response_iss_parameter_supported === true);
    check(`${L}: end_session_endpoint advertised`, typeof as.end_session_endpoint === 'string');
    check(`${L}: revocation_endpoint advertised`, typeof as.revocation_endpoint === 'string');
    return config;
  });

  const page = await newPage();
  const first = await newAuthorizationRequest(config, { scope: 'openid profile email offline_access', prompt: 'consent' });

  const arrival = await step('b. sign in and consent in the browser', async () => {
    const arrived = expectArrival('/cb');
    await page.goto(first.url.href);
    await signIn(page);
    await page.waitForURL(onIssuer('/consent'));
    check(`${L}: consent page shown after sign-in`, true);
    const text = await page.locator('body').innerText();
    check(`${L}: consent page names the client`, text.includes('E2E RP'), text.slice(0, 200));
    await page.screenshot({ path: CONSENT_SHOT, fullPage: true });
    await page.locator('button[name=decision][value=allow]').click();
    const arrival = await arrived;
    checkAuthorizationResponse(L, arrival, first);
    return arrival;
  });

  const tokens = await step('c. code exchange (openid-client validates the ID token)', async () => {
    const tokens = await exchange(config, arrival, first);
    checkAccessToken(L, tokens);
    check(`${L}: refresh token issued (offline_access)`, typeof tokens.refresh_token === 'string', show(Object.keys(tokens)));
    checkIdToken(L, c, tokens, first);
    return tokens;
  });
  const claims = tokens.claims();

  await step('d. userinfo', async () => {
    await checkUserInfo(L, config, tokens.access_token, claims.sub);
  });

  const refreshed = await step('e. refresh', async () => {
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    check(`${L}: refresh gives a new access token`, refreshed.access_token && refreshed.access_token !== tokens.access_token);
    check(
      `${L}: refresh rotates the refresh token`,
      typeof refreshed.refresh_token === 'string' && refreshed.refresh_token !== tokens.refresh_token,
      show(refreshed.refresh_token === tokens.refresh_token ? 'same token' : refreshed.refresh_token),
    );
    const refreshedClaims = refreshed.claims();
    if (refreshedClaims !== undefined) {
      checkEqual(`${L}: refreshed ID token sub unchanged`, refreshedClaims.sub, claims.sub);
      checkEqual(`${L}: refreshed ID token auth_time unchanged`, refreshedClaims.auth_time, claims.auth_time);
    }
    await checkUserInfo(`${L} (refreshed)`, config, refreshed.access_token, claims.sub);
    return refreshed;
  });

  await step('f. introspection and revocation', async () => {
    const active = await oidc.tokenIntrospection(config, refreshed.access_token);
    checkEqual(`${L}: introspection says the access token is active`, active.active, true);
    checkEqual(`${L}: introspection sub`, active.sub, claims.sub);
    checkEqual(`${L}: introspection client_id`, active.client_id, c.id);

    await oidc.tokenRevocation(config, refreshed.refresh_token);
    check(`${L}: revocation of the refresh token accepted`, true);
    let refusal;
    try {
      await oidc.refreshTokenGrant(config, refreshed.refresh_token);
    } catch (err) {
      refusal = err;
    }
    check(
      `${L}: a revoked refresh token is refused with invalid_grant`,
      refusal instanceof oidc.ResponseBodyError && refusal.error === 'invalid_grant',
      refusal ? describeError(refusal) : 'the refresh succeeded',
    );
    const rtInfo = await oidc.tokenIntrospection(config, refreshed.refresh_token);
    checkEqual(`${L}: introspection says the revoked refresh token is inactive`, rtInfo.active, false);

    await oidc.tokenRevocation(config, refreshed.access_token);
    const atInfo = await oidc.tokenIntrospection(config, refreshed.access_token);
    checkEqual(`${L}: introspection says the revoked access token is inactive`, atInfo.active, false);
    // Revoking a token that is already revoked, or unknown, still answers 200 (RFC 7009 §2.2).
    await oidc.tokenRevocation(config, 'not-a-token-latchkey-ever-issued');
    check(`${L}: revoking an unknown token answers 200`, true);
  });

  const silent = await step('g. prompt=none reuses the session and the remembered consent', async () => {
    const request = await newAuthorizationRequest(config, { prompt: 'none' });
    const from = page.navigations.length;
    const arrived = expectArrival('/cb');
    await page.goto(request.url.href);
    const arrival = await arrived;
    checkAuthorizationResponse(`${L} prompt=none`, arrival, request);
    const seen = pagesSeen(page, from);
    check(
      `${L} prompt=none: no login or consent page shown`,
      !seen.includes('/login') && !seen.includes('/consent'),
      show(seen),
    );
    const tokens2 = await exchange(config, arrival, request);
    const claims2 = checkIdToken(`${L} prompt=none`, c, tokens2, request);
    checkEqual(`${L} prompt=none: same subject`, claims2.sub, claims.sub);
    checkEqual(`${L} prompt=none: same auth_time (no new sign-in)`, claims2.auth_time, claims.auth_time);
    checkEqual(`${L} prompt=none: same sid`, claims2.sid, claims.sid);
    await checkUserInfo(`${L} prompt=none`, config, tokens2.access_token, claims.sub);
    return tokens2;
  });

  await step('h. RP-initiated logout', async () => {
    const logoutState = oidc.randomState();
    const url = oidc.buildEndSessionUrl(config, {
      id_token_hint: silent.id_token,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: logoutState,
    });
    checkEqual(`${L}: end-session URL is the discovered endpoint`, `${url.origin}${url.pathname}`, config.serverMetadata().end_session_endpoint);
    const arrived = expectArrival('/logged-out');
    await page.goto(url.href);
    const arrival = await arrived;
    checkEqual(`${L}: logout returns to post_logout_redirect_uri`, `${arrival.url.origin}${arrival.url.pathname}`, POST_LOGOUT_URI);
    checkEqual(`${L}: logout echoes state`, arrival.url.searchParams.get('state'), logoutState);
    await page.waitForURL((u) => u.href.startsWith(POST_LOGOUT_URI));
  });

  await step('i. prompt=none after logout gives login_required', async () => {
    const request = await newAuthorizationRequest(config, { prompt: 'none' });
    const arrived = expectArrival('/cb');
    await page.goto(request.url.href);
    const arrival = await arrived;
    const params = responseParams(arrival);
    checkEqual(`${L} after logout: error`, params.get('error'), 'login_required');
    checkEqual(`${L} after logout: state`, params.get('state'), request.state);
    checkEqual(`${L} after logout: iss`, params.get('iss'), ISSUER);
    check(`${L} after logout: no code`, !params.has('code'), arrival.url.href);
    // openid-client must surface the same error after validating state and iss.
    let refusal;
    try {
      await exchange(config, arrival, request);
    } catch (err) {
      refusal = err;
    }
    check(
      `${L} after logout: openid-client reports login_required`,
      refusal instanceof oidc.AuthorizationResponseError && refusal.error === 'login_required',
      refusal ? describeError(refusal) : 'the exchange succeeded',
    );
  });

  await page.context().close();
}

// ---------------------------------------------------------------------------------------
// Flow 2: public client (no secret, PKCE only).

async function publicFlow() {
  const c = CLIENTS.public;
  const L = c.label;
  console.log(`\n# ${L} client ${c.id} (none + PKCE, ${c.alg}, consent)`);

  const config = await step('a. discovery', async () => {
    const config = await discover(c);
    checkEqual(`${L}: discovered issuer`, config.serverMetadata().issuer, ISSUER);
    check(`${L}: auth method none advertised`, config.serverMetadata().token_endpoint_auth_methods_supported?.includes('none'));
    return config;
  });

  const page = await newPage();

  await step('b. sign in, then deny consent', async () => {
    const denied = await newAuthorizationRequest(config);
    const arrived = expectArrival('/cb');
    await page.goto(denied.url.href);
    await signIn(page);
    await page.waitForURL(onIssuer('/consent'));
    check(`${L}: consent page shown after sign-in`, true);
    await page.locator('button[name=decision][value=deny]').click();
    const arrival = await arrived;
    const params = responseParams(arrival);
    checkEqual(`${L} deny: error`, params.get('error'), 'access_denied');
    checkEqual(`${L} deny: state`, params.get('state'), denied.state);
    checkEqual(`${L} deny: iss`, params.get('iss'), ISSUER);
    check(`${L} deny: no code`, !params.has('code'), arrival.url.href);
    let refusal;
    try {
      await exchange(config, arrival, denied);
    } catch (err) {
      refusal = err;
    }
    check(
      `${L} deny: openid-client reports access_denied`,
      refusal instanceof oidc.AuthorizationResponseError && refusal.error === 'access_denied',
      refusal ? describeError(refusal) : 'the exchange succeeded',
    );
  });

  const request = await newAuthorizationRequest(config);
  const arrival = await step('c. signed in already: consent only, then allow', async () => {
    const from = page.navigations.length;
    const arrived = expectArrival('/cb');
    await page.goto(request.url.href);
    await page.waitForURL(onIssuer('/consent'));
    check(`${L}: asked again after a denial`, true);
    await page.locator('button[name=decision][value=allow]').click();
    const arrival = await arrived;
    check(`${L}: no second sign-in`, !pagesSeen(page, from).includes('/login'), show(pagesSeen(page, from)));
    checkAuthorizationResponse(L, arrival, request);
    return arrival;
  });

  const tokens = await step('d. code exchange with the PKCE verifier and no secret', async () => {
    const tokens = await exchange(config, arrival, request);
    checkAccessToken(L, tokens);
    checkIdToken(L, c, tokens, request);
    return tokens;
  });

  await step('e. userinfo', async () => {
    await checkUserInfo(L, config, tokens.access_token, tokens.claims().sub);
  });

  await step('g. a wrong PKCE verifier is refused', async () => {
    const second = await newAuthorizationRequest(config, { prompt: 'none' });
    const arrived = expectArrival('/cb');
    await page.goto(second.url.href);
    const arrival2 = await arrived;
    checkAuthorizationResponse(`${L} prompt=none`, arrival2, second);
    let refusal;
    try {
      await exchange(config, arrival2, { ...second, verifier: oidc.randomPKCECodeVerifier() });
    } catch (err) {
      refusal = err;
    }
    check(
      `${L}: a wrong code_verifier is refused with invalid_grant`,
      refusal instanceof oidc.ResponseBodyError && refusal.error === 'invalid_grant',
      refusal ? describeError(refusal) : 'the exchange succeeded',
    );
  });

  await step('h. RP-initiated logout by a cross-site form POST ends the session', async () => {
    const logoutState = oidc.randomState();
    const form = new URL(`http://127.0.0.1:${RP_PORT}/logout-form`);
    form.searchParams.set('action', config.serverMetadata().end_session_endpoint);
    form.searchParams.set('id_token_hint', tokens.id_token);
    form.searchParams.set('post_logout_redirect_uri', POST_LOGOUT_URI);
    form.searchParams.set('state', logoutState);
    const arrived = expectArrival('/logged-out');
    await page.goto(form.href);
    const arrival = await arrived;
    checkEqual(`${L}: posted logout returns with state`, arrival.url.searchParams.get('state'), logoutState);
    await page.waitForURL((u) => u.href.startsWith(POST_LOGOUT_URI));
    const request = await newAuthorizationRequest(config, { prompt: 'none' });
    const back = expectArrival('/cb');
    await page.goto(request.url.href);
    const params = responseParams(await back);
    checkEqual(`${L} after a posted logout: the session is gone`, params.get('error'), 'login_required');
  });

  await step('i. the same code cannot be redeemed twice (last: a replay ends the user\'s sessions, R012)', async () => {
    let refusal;
    try {
      await exchange(config, arrival, request);
    } catch (err) {
      refusal = err;
    }
    check(
      `${L}: a used code is refused with invalid_grant`,
      refusal instanceof oidc.ResponseBodyError && refusal.error === 'invalid_grant',
      refusal ? describeError(refusal) : 'the second exchange succeeded',
    );
  });

  await page.context().close();
}

// ---------------------------------------------------------------------------------------
// Flow 3: first-party confidential client (client_secret_post), response_mode=form_post.

async function formPostFlow() {
  const c = CLIENTS.post;
  const L = c.label;
  console.log(`\n# ${L} client ${c.id} (client_secret_post, ${c.alg}, first-party, form_post)`);

  const config = await step('a. discovery', async () => {
    const config = await discover(c);
    check(`${L}: form_post advertised`, config.serverMetadata().response_modes_supported?.includes('form_post'));
    return config;
  });

  const page = await newPage();
  const request = await newAuthorizationRequest(config, { response_mode: 'form_post' });

  const arrival = await step('b. sign in; no consent page for a first-party client', async () => {
    const from = page.navigations.length;
    const arrived = expectArrival('/cb');
    await page.goto(request.url.href);
    await signIn(page);
    const arrival = await arrived;
    checkEqual(`${L}: response is POSTed to the redirect URI`, arrival.method, 'POST');
    checkEqual(`${L}: redirect URI has no query`, arrival.url.search, '');
    checkAuthorizationResponse(L, arrival, request);
    const seen = pagesSeen(page, from);
    check(`${L}: no consent page for a first-party client`, !seen.includes('/consent'), show(seen));
    return arrival;
  });

  const tokens = await step('c. code exchange from the posted form', async () => {
    const tokens = await exchange(config, arrival, request);
    checkAccessToken(L, tokens);
    checkIdToken(L, c, tokens, request);
    return tokens;
  });

  await step('d. userinfo', async () => {
    await checkUserInfo(L, config, tokens.access_token, tokens.claims().sub);
  });

  await page.context().close();
}

// ---------------------------------------------------------------------------------------
// Flows 5 and 6 live in their own files and get this file's helpers.

const toolkit = {
  ISSUER,
  RP_BASE,
  CLIENTS,
  STEP_TIMEOUT_MS,
  check,
  checkEqual,
  require_,
  step,
  show,
  newPage,
  onIssuer,
  pagesSeen,
  expectArrival,
  landed,
  consentIfAsked,
  discover,
  newAuthorizationRequest,
  exchange,
  checkAuthorizationResponse,
  checkIdToken,
};

// Two-step verification (mfa.mjs).
async function twoStepFlow() {
  await mfaFlow(toolkit);
}

// Sessions on two devices, back-channel logout and webhooks (sessions.mjs).
async function sessionsFlow() {
  await sessionsAndEventsFlow(toolkit);
}

// ---------------------------------------------------------------------------------------

async function main() {
  const watchdog = setTimeout(() => {
    console.log(`e2e: run exceeded ${RUN_TIMEOUT_MS} ms`);
    console.log(`e2e: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }, RUN_TIMEOUT_MS);

  await new Promise((resolve, reject) => {
    rpServer.once('error', reject);
    rpServer.listen(RP_PORT, '127.0.0.1', resolve);
  });

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  console.log(`e2e: issuer ${ISSUER}, relying party ${RP_BASE}, ${CHROMIUM} ${browser.version()}`);

  // E2E_FLOWS=twoStepFlow,publicFlow runs only those (while working on one).
  const only = (process.env.E2E_FLOWS ?? '').split(',').filter(Boolean);
  const flows = [confidentialFlow, publicFlow, formPostFlow, registrationFlow, twoStepFlow, sessionsFlow];
  for (const flow of flows.filter((f) => only.length === 0 || only.includes(f.name))) {
    try {
      await flow();
    } catch (err) {
      if (!(err instanceof FlowAborted)) check(`${flow.name} ran`, false, describeError(err));
      console.log(`  (${flow.name} stopped early)`);
      await saveFailureScreenshot();
    }
  }

  check('no unexpected requests reached the relying party', unexpected.length === 0, show(unexpected));

  await browser.close();
  rpServer.close();
  clearTimeout(watchdog);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

async function saveFailureScreenshot() {
  try {
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        console.log(`  browser was at ${page.url()}`);
        await page.screenshot({ path: FAILURE_SHOT, fullPage: true });
        console.log(`  screenshot: ${FAILURE_SHOT}`);
        const text = (await page.locator('body').innerText().catch(() => '')).trim();
        if (text) console.log(`  page text: ${text.slice(0, 400).replace(/\s+/g, ' ')}`);
        await context.close();
      }
    }
  } catch {
    // Best effort only.
  }
}

main().catch(async (err) => {
  console.log(`e2e: aborted: ${describeError(err)}`);
  console.log(`e2e: ${passed} passed, ${failed + 1} failed`);
  try {
    await browser?.close();
  } catch {
    // ignore
  }
  process.exit(1);
});
