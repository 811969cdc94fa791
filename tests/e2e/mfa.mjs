// End-to-end test, two-step verification (issue 5): a user sets up an authenticator app
// on the security page, signs in at a relying party that asks for
// acr_values=urn:latchkey:acr:mfa, uses (and cannot reuse) a backup code, registers a
// passkey with Chromium's virtual authenticator, signs in with it without a password and
// answers the second step with it.
//
// The TOTP codes come from the `otpauth` package, not from anything Latchkey ships, so
// the server's RFC 6238 arithmetic is checked against an independent implementation.
//
// rp.mjs owns the browser, the relying party's redirect endpoint and the bookkeeping; it
// hands its helpers in (see twoStepFlow there). Configuration from the environment
// (run.sh sets it): E2E_MFA_USERNAME, E2E_MFA_EMAIL, E2E_MFA_PASSWORD.

import * as OTPAuth from 'otpauth';

export const ACR_MFA = 'urn:latchkey:acr:mfa';
const TOTP_PERIOD = 30;
const BACKUP_CODES = 10;
const PASSKEY_NAME = 'E2E virtual authenticator';

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`missing environment variable ${name}`);
  return value;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const totpStep = (ms = Date.now()) => Math.floor(ms / 1000 / TOTP_PERIOD);

export async function mfaFlow(t) {
  const { check, checkEqual, require_, step, show, ISSUER, CLIENTS } = t;
  const username = env('E2E_MFA_USERNAME');
  const email = env('E2E_MFA_EMAIL');
  const password = env('E2E_MFA_PASSWORD');
  const c = CLIENTS.confidential;
  const L = '2fa';
  console.log(`\n# ${L}: ${username} sets up an authenticator app, backup codes and a passkey`);

  const page = await t.newPage();
  // Chromium's virtual authenticator: a platform passkey store that always says yes and
  // verifies the user. It belongs to this page's target, so the whole flow uses one page.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  const atIssuer = (path) => t.onIssuer(path);

  async function typePassword() {
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  // From the login page to the challenge page.
  async function passwordThenChallenge(label) {
    await page.waitForURL(atIssuer('/login'));
    await typePassword();
    await page.waitForURL(atIssuer('/login/2fa'));
    check(`${label}: the password leads to the two-step page`, true);
  }

  async function signOut(label) {
    await page.goto(`${ISSUER}/account`);
    await page.waitForURL(atIssuer('/account'));
    await page.locator('form[action="/logout"] button[type=submit]').click();
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    check(`${label}: signed out`, true);
  }

  async function checkSignedInAccount(label) {
    await page.waitForURL(atIssuer('/account'));
    const text = await page.locator('body').innerText();
    check(`${label}: the account page shows ${username}`, text.includes(username), text.slice(0, 200));
  }

  const landed = (arrived) => t.landed(page, arrived);
  const consentIfAsked = (arrived) => t.consentIfAsked(page, arrived);

  function checkStepUpToken(label, tokens, request, factor) {
    const claims = t.checkIdToken(label, c, tokens, request, email);
    checkEqual(`${label}: ID token acr`, claims.acr, ACR_MFA);
    const amr = Array.isArray(claims.amr) ? claims.amr : [];
    for (const method of ['pwd', factor, 'mfa']) {
      check(`${label}: ID token amr contains ${method}`, amr.includes(method), show(claims.amr));
    }
    return claims;
  }

  // -------------------------------------------------------------------------------------
  // 1. The authenticator app, set up as a new user would.

  const config = await step('a. discovery lists the mfa acr', async () => {
    const config = await t.discover(c);
    const supported = config.serverMetadata().acr_values_supported;
    check(`${L}: acr_values_supported lists ${ACR_MFA}`, Array.isArray(supported) && supported.includes(ACR_MFA), show(supported));
    return config;
  });

  const enrolment = await step('b. set up an authenticator app on /account/security', async () => {
    await page.goto(`${ISSUER}/login`);
    await typePassword();
    await page.waitForURL(atIssuer('/account'));
    check(`${L}: a user without a second factor signs in with the password alone`, true);
    await page.goto(`${ISSUER}/account/security`);
    const status = await page.locator('#mfa-status').innerText();
    check(`${L}: the security page says two-step verification is off`, /\boff\b/.test(status), status);

    await page.locator('#totp-password').fill(password);
    await page.locator('#setup-totp').click();
    await page.locator('#totp-secret').waitFor();
    const secretText = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '').toUpperCase();
    const uriText = await page.locator('#otpauth-link').getAttribute('href');
    check(`${L}: the page shows a base32 secret of at least 128 bits`, /^[A-Z2-7]{26,}=*$/.test(secretText), show(secretText.length));

    // The otpauth URI, read by the independent library.
    let fromUri;
    try {
      fromUri = OTPAuth.URI.parse(uriText);
    } catch (err) {
      fromUri = err;
    }
    require_(`${L}: the otpauth link parses as a TOTP URI`, fromUri instanceof OTPAuth.TOTP, `${uriText}: ${fromUri?.message ?? ''}`);
    checkEqual(`${L}: the otpauth URI carries the secret shown`, fromUri.secret.base32.replace(/=+$/, ''), secretText.replace(/=+$/, ''));
    checkEqual(`${L}: otpauth digits`, fromUri.digits, 6);
    checkEqual(`${L}: otpauth period`, fromUri.period, TOTP_PERIOD);
    checkEqual(`${L}: otpauth algorithm`, fromUri.algorithm, 'SHA1');
    check(`${L}: otpauth label names the account`, decodeURIComponent(uriText).includes(username), uriText.replace(/secret=[^&]+/, 'secret=…'));
    const qr = await page.locator('.qr svg').count();
    check(`${L}: the page shows a QR code`, qr === 1, `${qr} svg elements`);

    // The code, from the secret as typed by hand (not from the URI).
    const totp = new OTPAuth.TOTP({
      secret: OTPAuth.Secret.fromBase32(secretText),
      digits: 6,
      period: TOTP_PERIOD,
      algorithm: 'SHA1',
    });
    const autocomplete = await page.locator('#totp-code').getAttribute('autocomplete');
    checkEqual(`${L}: the setup code input has autocomplete=one-time-code`, autocomplete, 'one-time-code');

    // A wrong code first: refused, the same secret offered again.
    const now = Date.now();
    const right = totp.generate({ timestamp: now });
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, '0');
    await page.locator('#totp-code').fill(wrong);
    await page.getByRole('button', { name: 'Turn on' }).click();
    const error = await page.locator('#form-error').innerText();
    check(`${L}: a wrong setup code is refused with a message`, error.length > 0, error);
    console.log(`  note ${L}: the page said ${show(error)}`);
    const secretAgain = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '').toUpperCase();
    checkEqual(`${L}: the refused setup shows the same secret again`, secretAgain, secretText);

    const usedAt = Date.now();
    await page.locator('#totp-code').fill(totp.generate({ timestamp: usedAt }));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.locator('#backup-codes').waitFor();
    const codes = (await page.locator('#backup-codes li code').allInnerTexts()).map((s) => s.trim());
    checkEqual(`${L}: ${BACKUP_CODES} backup codes shown after the first factor`, codes.length, BACKUP_CODES);
    checkEqual(`${L}: the backup codes are distinct`, new Set(codes).size, codes.length);
    check(`${L}: each backup code has at least 8 characters`, codes.every((s) => s.replace(/[-\s]/g, '').length >= 8), show(codes.map((s) => s.length)));
    require_(`${L}: enough backup codes to go on`, codes.length >= 3, show(codes.length));

    await page.locator('#continue').click();
    await page.waitForURL(atIssuer('/account/security'));
    const after = await page.locator('#mfa-status').innerText();
    check(`${L}: the security page now says two-step verification is on`, /\bon\b/.test(after), after);
    const app = await page.locator('#totp-status').count();
    check(`${L}: the security page lists the authenticator app`, app === 1);
    const left = await page.locator('#backup-codes-left').innerText();
    check(`${L}: ${BACKUP_CODES} unused backup codes left`, left.includes(String(BACKUP_CODES)), left);

    await signOut(L);
    return { totp, codes, lastStep: totpStep(usedAt) };
  });

  // A code is good once per 30-second step: the next one must come from a later step.
  // Waits before the sign-in starts, so no page or redirect deadline runs meanwhile.
  async function waitForNextTotpStep(label) {
    while (totpStep() <= enrolment.lastStep) {
      const wait = (enrolment.lastStep + 1) * TOTP_PERIOD * 1000 - Date.now() + 250;
      console.log(`  note ${label}: waiting ${Math.ceil(wait / 1000)} s for the next TOTP step`);
      await sleep(wait);
    }
  }

  function totpCodeNow() {
    const now = Date.now();
    if (totpStep(now) <= enrolment.lastStep) throw new Error('no fresh TOTP step to use');
    enrolment.lastStep = totpStep(now);
    return enrolment.totp.generate({ timestamp: now });
  }

  // -------------------------------------------------------------------------------------
  // 2. At the relying party, acr_values=mfa: password, then the app's code.

  const totpRequest = await t.newAuthorizationRequest(config, { acr_values: ACR_MFA });
  const totpArrival = await step('c. sign in at the RP with acr_values=mfa: password, then the app', async () => {
    await waitForNextTotpStep(`${L} totp`);
    const from = page.navigations.length;
    await page.goto(totpRequest.url.href);
    await passwordThenChallenge(`${L} totp`);
    const totpSection = await page.locator('#factor-totp').count();
    require_(`${L} totp: the two-step page offers the authenticator app`, totpSection === 1);
    checkEqual(
      `${L} totp: the code input has autocomplete=one-time-code`,
      await page.locator('#factor-totp #totp-code').getAttribute('autocomplete'),
      'one-time-code',
    );
    check(`${L} totp: the two-step page offers a backup code`, (await page.locator('details#factor-backup').count()) === 1);
    check(`${L} totp: the two-step page offers remembering the device`, (await page.locator('#factor-totp input[name=remember_device]').count()) === 1);
    await page.locator('#factor-totp #totp-code').fill(totpCodeNow());
    const arrived = t.expectArrival('/cb');
    await page.locator('#factor-totp button[type=submit]').click();
    const arrival = await consentIfAsked(arrived);
    const seen = t.pagesSeen(page, from).filter((p) => ['/login', '/login/2fa', '/consent'].includes(p));
    const order = [...new Set(seen)];
    checkEqual(`${L} totp: password, then the second step, then consent`, order.join(' → '), '/login → /login/2fa → /consent');
    t.checkAuthorizationResponse(`${L} totp`, arrival, totpRequest);
    return arrival;
  });

  await step('d. the ID token says mfa: acr, amr pwd + otp + mfa', async () => {
    const tokens = await t.exchange(config, totpArrival, totpRequest);
    const claims = checkStepUpToken(`${L} totp`, tokens, totpRequest, 'otp');
    checkEqual(`${L} totp: preferred_username`, claims.preferred_username ?? username, username);
  });

  await step('e. the same TOTP code is not accepted twice', async () => {
    await signOut(`${L} totp`);
    await page.goto(`${ISSUER}/login`);
    await passwordThenChallenge(`${L} totp replay`);
    const code = enrolment.totp.generate({ timestamp: enrolment.lastStep * TOTP_PERIOD * 1000 });
    await page.locator('#factor-totp #totp-code').fill(code);
    await page.locator('#factor-totp button[type=submit]').click();
    const error = await page.locator('#mfa-error').innerText();
    check(`${L} totp replay: a code already used is refused with a message`, error.length > 0, error);
    console.log(`  note ${L} totp replay: the page said ${show(error)}`);
    check(`${L} totp replay: still on the two-step page`, t.onIssuer('/login/2fa')(new URL(page.url())), page.url());
  });

  // -------------------------------------------------------------------------------------
  // 3. Backup codes: each one works once.

  async function answerWithBackupCode(code) {
    const details = page.locator('details#factor-backup');
    await details.locator('summary').click();
    check(`${L} backup: the details element opens`, await details.evaluate((d) => d.open));
    await page.locator('#backup-code').fill(code);
    await details.locator('button[type=submit]').click();
  }

  await step('f. sign in with a backup code', async () => {
    // Still on the two-step page from the refused replay.
    await answerWithBackupCode(enrolment.codes[0]);
    await checkSignedInAccount(`${L} backup`);
    await signOut(`${L} backup`);
  });

  await step('g. the same backup code is refused; an unused one works', async () => {
    await page.goto(`${ISSUER}/login`);
    await passwordThenChallenge(`${L} backup reuse`);
    await answerWithBackupCode(enrolment.codes[0]);
    const error = await page.locator('#mfa-error').innerText();
    check(`${L} backup reuse: a used backup code is refused with a message`, error.length > 0, error);
    console.log(`  note ${L} backup reuse: the page said ${show(error)}`);
    check(`${L} backup reuse: still on the two-step page`, t.onIssuer('/login/2fa')(new URL(page.url())), page.url());
    // Spaces and capitals do not matter.
    await answerWithBackupCode(` ${enrolment.codes[1].toUpperCase()} `);
    await checkSignedInAccount(`${L} backup (second code)`);
    await page.goto(`${ISSUER}/account/security`);
    const left = await page.locator('#backup-codes-left').innerText();
    check(`${L} backup: ${BACKUP_CODES - 2} unused backup codes left`, left.includes(String(BACKUP_CODES - 2)), left);
  });

  // -------------------------------------------------------------------------------------
  // 4. Passkeys, with the virtual authenticator.

  await step('h. register a passkey on /account/passkeys', async () => {
    await page.goto(`${ISSUER}/account/security`);
    await page.locator('#manage-passkeys').click();
    await page.waitForURL(atIssuer('/account/passkeys'));
    await page.locator('#passkey-name').fill(PASSKEY_NAME);
    await page.locator('#passkey-password').fill(password);
    await page.locator('#add-passkey').click();
    // The ceremony page starts navigator.credentials.create by itself and posts the answer.
    await page.locator('#passkeys li.passkey').first().waitFor();
    const notice = await page.locator('#notice').innerText().catch(() => '');
    check(`${L} passkey: the page confirms the new passkey`, notice.includes(PASSKEY_NAME), notice);
    const names = await page.locator('#passkeys .passkey-name').allInnerTexts();
    check(`${L} passkey: the list shows it`, names.includes(PASSKEY_NAME), show(names));
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    checkEqual(`${L} passkey: the authenticator holds one credential`, credentials.length, 1);
    checkEqual(`${L} passkey: it is a discoverable credential`, credentials[0]?.isResidentCredential, true);
    checkEqual(`${L} passkey: for the issuer's host`, credentials[0]?.rpId, new URL(ISSUER).hostname);
    await signOut(`${L} passkey`);
  });

  await step('i. sign in with a passkey, no password', async () => {
    await page.goto(`${ISSUER}/login`);
    const from = page.navigations.length;
    await page.locator('#passkey-login button[type=submit]').click();
    await checkSignedInAccount(`${L} passwordless`);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(`${L} passwordless: the authenticator signed (sign count moved)`, credentials[0]?.signCount > 0, show(credentials[0]?.signCount));
    const seen = t.pagesSeen(page, from);
    check(`${L} passwordless: no two-step page`, !seen.includes('/login/2fa'), show(seen));
  });

  await step('j. prompt=none with acr_values=mfa: the passkey session is enough', async () => {
    const request = await t.newAuthorizationRequest(config, { acr_values: ACR_MFA, prompt: 'none' });
    const arrived = t.expectArrival('/cb');
    await page.goto(request.url.href);
    const arrival = await landed(arrived);
    t.checkAuthorizationResponse(`${L} passwordless`, arrival, request);
    const tokens = await t.exchange(config, arrival, request);
    const claims = tokens.claims();
    checkEqual(`${L} passwordless: ID token acr`, claims.acr, ACR_MFA);
    check(`${L} passwordless: ID token amr contains hwk and mfa`, claims.amr?.includes('hwk') && claims.amr?.includes('mfa'), show(claims.amr));
    check(`${L} passwordless: ID token amr has no pwd`, !claims.amr?.includes('pwd'), show(claims.amr));
    await signOut(`${L} passwordless`);
  });

  const passkeyRequest = await t.newAuthorizationRequest(config, { acr_values: ACR_MFA });
  const passkeyArrival = await step('k. at the RP with acr_values=mfa: password, then the passkey', async () => {
    await page.goto(passkeyRequest.url.href);
    await passwordThenChallenge(`${L} passkey 2fa`);
    require_(`${L} passkey 2fa: the two-step page offers the passkey`, (await page.locator('#factor-webauthn').count()) === 1);
    // Remember this browser: the next plain sign-in skips the second step.
    await page.locator('#webauthn-form input[name=remember_device]').check();
    const arrived = t.expectArrival('/cb');
    await page.locator('#use-passkey').click();
    const arrival = await consentIfAsked(arrived);
    t.checkAuthorizationResponse(`${L} passkey 2fa`, arrival, passkeyRequest);
    return arrival;
  });

  await step('l. the ID token says mfa: acr, amr pwd + hwk + mfa', async () => {
    const tokens = await t.exchange(config, passkeyArrival, passkeyRequest);
    checkStepUpToken(`${L} passkey 2fa`, tokens, passkeyRequest, 'hwk');
  });

  await step('m. a remembered browser skips the second step', async () => {
    await page.goto(`${ISSUER}/account/security`);
    const devices = await page.locator('ul#devices li').count();
    checkEqual(`${L} remember: the security page lists one remembered device`, devices, 1);
    await signOut(`${L} remember`);
    await page.goto(`${ISSUER}/login`);
    const from = page.navigations.length;
    await typePassword();
    await checkSignedInAccount(`${L} remember`);
    const seen = t.pagesSeen(page, from);
    check(`${L} remember: no two-step page on the remembered browser`, !seen.includes('/login/2fa'), show(seen));
  });

  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }).catch(() => {});
  await page.context().close();
}
