// End-to-end test, the admin console (issue 13), as an operator tries it in Chromium:
// sign in as an administrator and land on /admin, see the sign-in chart, find a user by
// part of their email, end their sessions, suspend and reactivate them, create a client
// and read its secret once, rename the client, rotate the signing keys, create an invite
// (its link shown once) and a webhook.
// Screenshots of the dashboard and a user page at a phone's width go to
// E2E_SCREENSHOT_DIR (default: the system temp directory).
//
// Configuration from the environment (run.sh sets it): E2E_ISSUER, E2E_CHROMIUM,
// E2E_ADMIN_USERNAME, E2E_ADMIN_PASSWORD, E2E_USERNAME, E2E_EMAIL, E2E_PASSWORD.

import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`missing environment variable ${name}`);
  return value;
}

const ISSUER = env('E2E_ISSUER');
const SHOTS = process.env.E2E_SCREENSHOT_DIR || os.tmpdir();
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? 'ok' : 'FAILED'} - admin: ${name}${ok || !detail ? '' : ` (${detail})`}`);
  return ok;
}

async function signIn(page, username, password) {
  await page.goto(`${ISSUER}/login`);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState('load');
}

const browser = await chromium.launch({
  executablePath: env('E2E_CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  // The user signs in first, in a browser of their own: a sign-in for the chart and a
  // session for the admin to end.
  const userContext = await browser.newContext();
  const userPage = await userContext.newPage();
  await signIn(userPage, env('E2E_USERNAME'), env('E2E_PASSWORD'));
  check('the user is signed in', new URL(userPage.url()).pathname === '/account', userPage.url());

  // A phone-sized admin browser.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  await signIn(page, env('E2E_ADMIN_USERNAME'), env('E2E_ADMIN_PASSWORD'));
  check('an admin lands on /admin', new URL(page.url()).pathname === '/admin', page.url());
  const chart = page.locator('svg#chart-24h');
  check('the dashboard draws the chart', (await chart.count()) === 1);
  const signIns = Number(await chart.getAttribute('data-sign-ins'));
  check('the chart counts the sign-ins', signIns >= 2, `data-sign-ins=${signIns}`);
  await page.screenshot({ path: path.join(SHOTS, 'admin-dashboard-phone.png'), fullPage: true });

  // Find the user by part of their email, with the keyboard.
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  const email = env('E2E_EMAIL');
  // The start of the address, in capitals: the search ignores case.
  const part = email.slice(0, 7).toUpperCase();
  await page.getByLabel('Username, email or name').fill(part);
  await page.keyboard.press('Enter');
  await page.waitForURL(/[?&]q=/);
  const found = page.locator('#users a', { hasText: env('E2E_USERNAME') });
  check(`searching "${part}" finds the user`, (await found.count()) === 1);
  await found.click();
  await page.waitForLoadState('load');
  check('the user page lists their session', (await page.locator('#sessions li').count()) >= 1);
  await page.screenshot({ path: path.join(SHOTS, 'admin-user-phone.png'), fullPage: true });
  await page.locator('#end-all').click();
  await page.waitForLoadState('load');
  check('ending their sessions says so', (await page.locator('#notice').textContent())?.includes('ended'));
  await userPage.goto(`${ISSUER}/account`);
  check('the user is signed out', new URL(userPage.url()).pathname === '/login', userPage.url());

  // Status actions: suspend, then reactivate (the relying-party flows sign this user in later).
  await page.locator('#action-suspend').click();
  await page.waitForLoadState('load');
  check('suspending shows the new status', (await page.locator('#status').textContent())?.trim() === 'suspended');
  await page.locator('#action-reactivate').click();
  await page.waitForLoadState('load');
  check('reactivating shows the account active', (await page.locator('#status').textContent())?.trim() === 'active');

  // A new client, and its secret, shown once.
  await page.getByRole('link', { name: 'Clients', exact: true }).click();
  await page.getByLabel('Name').fill('E2E console client');
  await page.getByLabel('Redirect URIs').fill('https://console-rp.example/cb');
  await page.locator('#create-client').click();
  await page.waitForLoadState('load');
  const secret = (await page.locator('#client-secret').textContent()) ?? '';
  check('the new client secret is shown', secret.length >= 32, `length ${secret.length}`);
  await page.locator('#to-client').click();
  const settings = await page.content();
  check('the secret is not shown again', !settings.includes(secret));
  await page.locator('#rotate-secret').click();
  await page.waitForLoadState('load');
  const rotated = (await page.locator('#client-secret').textContent()) ?? '';
  check('rotating shows a new secret', rotated.length >= 32 && rotated !== secret);

  // Edit the client's name on its settings form and see it saved.
  await page.locator('#to-client').click();
  await page.waitForLoadState('load');
  const renamed = 'E2E console client, renamed';
  await page.locator('#name').fill(renamed);
  await page.locator('#save-client').click();
  await page.waitForLoadState('load');
  const saved = (await page.locator('#notice').textContent()) ?? '';
  const heading = (await page.locator('#client-name').textContent()) ?? '';
  check('editing the client saves its name', saved.includes('saved') && heading === renamed, `${saved} / ${heading}`);

  // Rotate the signing keys: the page shows a new active kid, and the JWKS has it.
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await page.waitForLoadState('load');
  const activeKid = page.locator('.active-kid[data-alg="ES256"]');
  const kidBefore = (await activeKid.textContent()) ?? '';
  await page.locator('#confirm-rotate').check();
  await page.locator('#rotate-keys').click();
  await page.waitForLoadState('load');
  const kidAfter = (await activeKid.textContent()) ?? '';
  check('rotating the keys shows a new active kid', kidAfter !== '' && kidAfter !== kidBefore,
    `${kidBefore} -> ${kidAfter}`);
  const jwks = await (await fetch(`${ISSUER}/jwks`)).json();
  check('the new active kid is published', jwks.keys.some((k) => k.kid === kidAfter));

  // An invite, its link shown once; a webhook, listed.
  await page.getByRole('link', { name: 'Invites', exact: true }).click();
  await page.getByLabel('Note', { exact: true }).fill('E2E invitee');
  await page.locator('#create-invite').click();
  await page.waitForLoadState('load');
  const inviteLink = (await page.locator('#invite-link').textContent()) ?? '';
  check('the invite link is shown', inviteLink.includes('/register?invite=lki_'), inviteLink);
  await page.locator('#to-invites').click();
  await page.waitForLoadState('load');
  const invites = await page.content();
  const inviteKey = inviteLink.split('invite=')[1] ?? '';
  check('the invite is listed without its key', invites.includes('E2E invitee') && inviteKey.length > 8 && !invites.includes(inviteKey));
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByLabel('URL', { exact: true }).fill('http://127.0.0.1:9/e2e-console-hook');
  await page.locator('#create-webhook').click();
  await page.waitForLoadState('load');
  const hookSecret = (await page.locator('#webhook-secret').textContent()) ?? '';
  check('the webhook secret is shown', hookSecret.startsWith('whsec_'), hookSecret.slice(0, 6));
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.waitForLoadState('load');
  check('the webhook is listed', (await page.locator('#webhooks a', { hasText: 'e2e-console-hook' }).count()) === 1);

  await page.getByRole('link', { name: 'Audit', exact: true }).click();
  check('the audit page has the chart', (await page.locator('svg#chart-7d').count()) === 1);
  check('the audit page links the CSV export', (await page.locator('#csv-export').count()) === 1);
} catch (err) {
  check('the admin flow ran', false, err?.stack ?? String(err));
} finally {
  await browser.close();
}
console.log(`e2e admin: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
