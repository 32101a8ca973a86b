// The web UI, driven in Debian's Chromium by playwright-core (no browser download).
// Run by crates/server/tests/ui.rs, which starts the server and passes, in the environment:
// BASE (the server's address), CHROMIUM (the browser), ADMIN_KEY, OPERATOR_KEY, DEVICE_KEY,
// CAM_ENROL / CAM_SAME / CAM_OTHER (y4m clips for the fake camera: the person to enrol,
// another photo of them, someone else), MIC (a WAV of speech for the fake microphone) and
// SHOTS (where every page's screenshot goes).
//
// The flow: sign-in pages in the browser's language and by the switch; a person enrolled
// at the kiosk (consent screen, framing hints, capture, receipt and their own token); their
// face verified (allow) and someone else's (deny) with a device key; card and PIN as an equal
// choice on the same screen; the liveness challenge screen when the policy asks for it (a
// still photo fails it); the person's portal: their consent, what is held, who looked and
// why, the export, the withdrawal; the face refused after it; the admin console: subjects,
// keys, the audit log verified, with these events; last, a policy of face and voice: the
// voice step at enrolment and the recording at the gate. Accessibility checks on every page:
// labels, names, the language attribute, keyboard reach; no CSP violation anywhere.
// Prints one JSON line at the end: what the Rust side checks in the database.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const need = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = need('BASE');
const SHOTS = need('SHOTS');
const FLAGS = [
  '--disable-background-networking', '--disable-component-update', '--no-first-run',
  '--disable-sync', '--no-sandbox',
];
const problems = [];
const dialogs = [];
const browsers = [];

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function launch(cam, mic) {
  const args = [...FLAGS];
  if (cam) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-video-capture=${cam}`);
  }
  if (mic) args.push(`--use-file-for-fake-audio-capture=${mic}`, '--autoplay-policy=no-user-gesture-required');
  const b = await chromium.launch({ executablePath: need('CHROMIUM'), headless: true, args });
  browsers.push(b);
  return b;
}

async function open(browser, locale = 'en-GB') {
  const ctx = await browser.newContext({ locale, viewport: { width: 1100, height: 860 } });
  await ctx.grantPermissions(['camera'], { origin: BASE });
  const page = await ctx.newPage();
  // Confirmation questions (withdraw, delete) are answered yes, and kept to check they came.
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept().catch(() => {}); });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) {
      problems.push(`CSP: ${m.text()}`);
    }
  });
  // Nothing is loaded from anywhere but this server.
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:')) {
      problems.push(`request to elsewhere: ${u}`);
    }
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Every visible form control has a name a screen reader reads out, the page has its
// language, every image its text; the page's headers carry the CSP.
async function a11y(page, name) {
  const found = await page.evaluate(() => {
    const out = [];
    if (!document.documentElement.lang) out.push('no lang on <html>');
    const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
    for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
      if (el.type === 'hidden' || !visible(el)) continue;
      const id = el.id && document.querySelector(`label[for="${el.id}"]`);
      const named = id || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
        || (el.closest('label')) || (el.textContent || '').trim() || el.title;
      if (!named) out.push(`unnamed ${el.tagName.toLowerCase()}#${el.id}`);
    }
    for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) out.push('img without alt');
    if (!document.querySelector('h1')) out.push('no h1');
    return out;
  });
  for (const f of found) problems.push(`${name}: ${f}`);
}

async function visit(page, url, name) {
  const r = await page.goto(BASE + url);
  const csp = r.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `${name}: CSP header: ${csp}`);
  await a11y(page, name);
  return r;
}

async function signIn(page, area, secret, name) {
  await visit(page, `/ui/login/${area}`, `login-${area}`);
  if (name) await shot(page, name);
  await page.fill('#secret', secret);
  await Promise.all([page.waitForURL(`**/ui/${area}`), page.click('main button[type="submit"]')]);
}

async function signInFails(page, secret) {
  await visit(page, '/ui/login/me', 'login-me-again');
  await page.fill('#secret', secret);
  await page.click('main button[type="submit"]');
  await page.waitForSelector('#login-error');
}

// The kiosk's result banner after an action: its kind (allow / deny / info / error) and text.
async function result(page, action) {
  await page.evaluate(() => { document.getElementById('result').hidden = true; });
  await action();
  await page.waitForSelector('#result:not([hidden])', { timeout: 30000 });
  const kind = await page.$eval('#result', (el) => el.className.replace('result', '').trim());
  const text = await page.textContent('#result');
  return { kind, text };
}

async function framed(page) {
  // The framing hint says the face is fine (the quality endpoint saw one good face).
  await page.waitForFunction(() => document.body.dataset.hint === 'ok', null, { timeout: 30000 });
}

async function api(method, url, key, body) {
  const r = await fetch(BASE + url, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : {} };
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const summary = {};

  // ---- The start page in the browser's language (Russian), then English by the switch.
  const plain = await launch(null);
  {
    const page = await open(plain, 'ru-RU');
    await visit(page, '/ui/', 'home-ru');
    check(await page.getAttribute('html', 'lang') === 'ru', 'Russian from Accept-Language');
    await shot(page, 'home-ru');
    await Promise.all([page.waitForURL('**/ui/'), page.click('a[hreflang="en"]')]);
    check(await page.getAttribute('html', 'lang') === 'en', 'English by the switch');
    await shot(page, 'home');
    // A wrong key: a clear refusal on the sign-in page, nothing else.
    await visit(page, '/ui/login/admin', 'login-admin');
    await page.fill('#secret', 'cs_not_a_key');
    await page.click('main button[type="submit"]');
    await page.waitForSelector('#login-error');
    await shot(page, 'login-refused');
    // A device key does not open the admin console.
    await page.fill('#secret', need('DEVICE_KEY'));
    await page.click('main button[type="submit"]');
    await page.waitForSelector('#login-error');
    check(page.url().endsWith('/ui/login/admin'), 'device key refused at the admin console');
    // Pages behind sign-in send the browser to sign in.
    await page.goto(BASE + '/ui/me');
    check(page.url().endsWith('/ui/login/me'), 'portal asks for the token');
  }

  // ---- Enrolment at the kiosk (an operator key: device keys cannot create records).
  const camEnrol = await launch(need('CAM_ENROL'));
  let subject, token, personPage;
  {
    const page = await open(camEnrol);
    await signIn(page, 'kiosk', need('OPERATOR_KEY'), 'login-kiosk');
    await a11y(page, 'kiosk');
    await framed(page);
    await shot(page, 'kiosk');
    check(await page.textContent('#hint') !== '', 'a framing hint is shown');
    // Keyboard: the tabs move with the arrow keys.
    await page.focus('#tab-check');
    await page.keyboard.press('ArrowRight');
    check(await page.evaluate(() => document.activeElement.id) === 'tab-enrol', 'arrow key moves to the enrol tab');
    // One step at a time: the consent screen, then the capture, then the receipt.
    const steps = async () => ({
      consent: await page.isVisible('#consent'),
      capture: await page.isVisible('#capture'),
      done: await page.isVisible('#done'),
    });
    check(JSON.stringify(await steps()) === '{"consent":true,"capture":false,"done":false}', 'consent screen alone first');
    check(!(await page.isVisible('#look')), 'the check panel is hidden behind the enrol tab');
    await page.check('input[name="purpose"][value="verification"]');
    const consent = await page.textContent('#consent-text');
    check(/365/.test(consent), `the consent text states the retention: ${consent}`);
    await a11y(page, 'kiosk-consent');
    await shot(page, 'kiosk-enrol-consent');
    await page.click('#agree');
    await page.waitForSelector('#capture:not([hidden])');
    check(JSON.stringify(await steps()) === '{"consent":false,"capture":true,"done":false}', 'capture step alone');
    await shot(page, 'kiosk-enrol-capture');
    await page.click('#take');
    await page.waitForSelector('#done:not([hidden])', { timeout: 30000 });
    check(JSON.stringify(await steps()) === '{"consent":false,"capture":false,"done":true}', 'receipt step alone');
    token = (await page.textContent('#person-token')).trim();
    check(token.startsWith('st_'), `the person's own token is shown: ${token}`);
    const receipt = await page.$$eval('#receipt dd', (dds) => dds.map((d) => d.textContent));
    subject = receipt[0];
    check(/^[0-9a-f]{32}$/.test(subject), `receipt names the record: ${receipt}`);
    check(receipt[4] && receipt[4].length > 40, 'receipt carries its signature');
    await shot(page, 'kiosk-enrol-done');
    summary.subject = subject;

    // Russian kiosk, for the docs.
    await page.goto(BASE + '/ui/lang?set=ru&back=/ui/kiosk');
    await framed(page);
    check(await page.getAttribute('html', 'lang') === 'ru', 'kiosk in Russian');
    await shot(page, 'kiosk-ru');
    await page.goto(BASE + '/ui/lang?set=en&back=/ui/kiosk');
  }

  // A PIN for the same person, for the access purpose (the API, as an operator's desk would).
  const op = need('OPERATOR_KEY');
  check((await api('POST', `/api/v1/subjects/${subject}/consents`, op, { purpose: 'access', retention_days: 365 })).status === 201, 'access consent');
  const pin = await api('POST', `/api/v1/subjects/${subject}/credentials`, op, { pin: '480913' });
  check(pin.status === 201, `PIN set: ${JSON.stringify(pin)}`);

  // ---- Verification at the gate with a device key: the same person (another photo).
  const camSame = await launch(need('CAM_SAME'));
  const gate = await open(camSame);
  await signIn(gate, 'kiosk', need('DEVICE_KEY'));
  check(!(await gate.isVisible('#tab-enrol')), 'no enrolment with a device key');
  await framed(gate);
  await gate.fill('#claim', subject);
  let r = await result(gate, () => gate.click('#look'));
  check(r.kind === 'allow', `same person allowed: ${JSON.stringify(r)}`);
  await shot(gate, 'kiosk-allow');
  // The PIN, as an equal choice on the same screen; a wrong PIN is refused.
  await gate.fill('#pin', '480913');
  r = await result(gate, () => gate.click('#cred-form button[type="submit"]'));
  check(r.kind === 'allow', `PIN allowed: ${JSON.stringify(r)}`);
  await gate.fill('#pin', '111111');
  r = await result(gate, () => gate.click('#cred-form button[type="submit"]'));
  check(r.kind === 'deny', `wrong PIN denied: ${JSON.stringify(r)}`);

  // A pass (QR) for gate-1, typed in by a QR scanner (or pasted): allowed; once revoked,
  // refused.
  check((await api('POST', `/api/v1/subjects/${subject}/consents`, op, { purpose: 'pass', retention_days: 30 })).status === 201, 'pass consent');
  const issued = await api('POST', `/api/v1/subjects/${subject}/passes`, op, { access: 'gate-1', valid_days: 7 });
  check(issued.status === 201 && issued.json.pass.startsWith('CS1:'), `pass issued: ${JSON.stringify(issued)}`);
  await gate.fill('#pass', issued.json.pass);
  r = await result(gate, () => gate.click('#pass-form button[type="submit"]'));
  check(r.kind === 'allow', `pass allowed: ${JSON.stringify(r)}`);
  await shot(gate, 'kiosk-pass');
  check((await api('POST', `/api/v1/subjects/${subject}/passes/${issued.json.pass_id}/revoke`, op)).status === 200, 'pass revoked');
  await gate.fill('#pass', issued.json.pass);
  r = await result(gate, () => gate.click('#pass-form button[type="submit"]'));
  check(r.kind === 'deny' && /revoked/.test(r.text), `revoked pass refused: ${JSON.stringify(r)}`);
  await gate.fill('#pass', 'CS1:not-a-pass');
  r = await result(gate, () => gate.click('#pass-form button[type="submit"]'));
  check(r.kind === 'deny', `garbage refused: ${JSON.stringify(r)}`);

  // A new pass in place of the revoked one: the person will see its QR code in the portal.
  check((await api('POST', `/api/v1/subjects/${subject}/passes`, op, { access: 'gate-1', valid_days: 7 })).status === 201, 'second pass');

  // A visitor holds their pass's QR code up to the kiosk's camera.
  {
    const camPass = await launch(need('CAM_PASS'));
    const page = await open(camPass);
    await signIn(page, 'kiosk', need('DEVICE_KEY'));
    await page.waitForFunction(() => document.getElementById('video').videoWidth > 0);
    r = await result(page, () => page.click('#pass-scan'));
    check(r.kind === 'allow', `the QR code scanned by the camera: ${JSON.stringify(r)}`);
    await shot(page, 'kiosk-pass-scan');
  }

  // ---- Someone else claiming to be them.
  const camOther = await launch(need('CAM_OTHER'));
  {
    const page = await open(camOther);
    await signIn(page, 'kiosk', need('DEVICE_KEY'));
    await framed(page);
    await page.fill('#claim', subject);
    r = await result(page, () => page.click('#look'));
    check(r.kind === 'deny', `someone else denied: ${JSON.stringify(r)}`);
    await shot(page, 'kiosk-deny');
  }

  // ---- A second gate that guesses PINs: refused, then locked out and suspended.
  let guesser;
  {
    guesser = await open(camOther);
    await signIn(guesser, 'kiosk', need('DEVICE2_KEY'));
    const seen = [];
    for (let i = 0; i < 14; i++) {
      await guesser.fill('#pin', String(200000 + i));
      const g = await result(guesser, () => guesser.click('#cred-form button[type="submit"]'));
      seen.push(g.text);
      if (/suspended/.test(g.text)) break;
    }
    check(seen[0] === 'Not allowed', `a wrong PIN is a plain deny: ${seen}`);
    check(/suspended/.test(seen[seen.length - 1]), `the guessing gate is suspended: ${seen}`);
    await shot(guesser, 'kiosk-suspended');
  }

  // ---- The liveness challenge when the policy asks for it: a still photo fails it.
  const admin = need('ADMIN_KEY');
  check((await api('PUT', '/api/v1/liveness/policy', admin, { purpose: 'verification', required: true })).status === 204, 'policy on');
  {
    await gate.evaluate(() => { document.getElementById('result').hidden = true; });
    await gate.click('#look');
    await gate.waitForSelector('#challenge:not([hidden])', { timeout: 15000 });
    const said = await gate.textContent('#challenge-text');
    const arrow = await gate.textContent('#challenge-arrow');
    check(said.length > 3 && arrow.length > 0, `challenge in words and an arrow: ${said} ${arrow}`);
    await shot(gate, 'kiosk-challenge');
    await gate.waitForSelector('#result:not([hidden])', { timeout: 30000 });
    const kind = await gate.$eval('#result', (el) => el.className);
    check(kind.includes('deny'), `a still photo fails the challenge: ${kind}`);
    await shot(gate, 'kiosk-challenge-failed');
  }
  check((await api('PUT', '/api/v1/liveness/policy', admin, { purpose: 'verification', required: false })).status === 204, 'policy off');

  // ---- The person's own portal, with their token.
  {
    const page = await open(plain);
    await signIn(page, 'me', token, 'login-me');
    await a11y(page, 'me');
    const body = await page.textContent('main');
    check(body.includes(subject), 'the portal names the record');
    const accesses = await page.$$eval('#accesses tbody tr', (rows) => rows.map((r) => r.textContent));
    // In plain words: the enrolment and the face checks, with their outcomes.
    check(accesses.some((a) => a.includes('Face enrolled')), `who looked: the enrolment: ${accesses}`);
    check(accesses.some((a) => a.includes('Face compared with your record') && a.includes('Allowed')),
      `who looked: the verification: ${accesses}`);
    check(accesses.some((a) => a.includes('Refused')), `who looked: the refusal: ${accesses}`);
    const held = await page.textContent('#h-held + ul');
    check(/face template/.test(held) && /PIN/.test(held) && /pass/.test(held), `what is held: ${held}`);
    // The live pass's QR code, drawn from this server.
    await page.waitForFunction(() => {
      const img = document.querySelector('img.qr');
      return img && img.complete && img.naturalWidth > 100;
    });
    await shot(page, 'me');
    // Export: a JSON file with the record, and no template bytes.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('form[action="/ui/me/export"] button'),
    ]);
    const file = await download.path();
    const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
    check(exported.id === subject && exported.tenant, 'the export is of this record');
    check(!/sealed|ciphertext|embedding/i.test(JSON.stringify(exported)), 'no template bytes exported');
    // Withdraw the verification consent (the page asks first).
    const rows = await page.$$('table tbody tr');
    let clicked = false;
    for (const row of rows) {
      const text = await row.textContent();
      const button = await row.$('form[action="/ui/me/withdraw"] button');
      if (button && /verif|Verif/.test(text)) {
        await Promise.all([page.waitForURL('**/ui/me**'), button.click()]);
        clicked = true;
        break;
      }
    }
    check(clicked, 'a withdraw button for the verification consent');
    check(dialogs.some((m) => /Withdraw this consent/.test(m)), `asked before withdrawing: ${dialogs}`);
    await page.waitForLoadState();
    await shot(page, 'me-withdrawn');
    const after = await page.textContent('main');
    check(/withdrawn/i.test(after), 'the consent shows as withdrawn');
    const heldAfter = await page.textContent('#h-held + ul');
    check(!/face template/.test(heldAfter), `the face template is gone: ${heldAfter}`);
    personPage = page;
  }

  // ---- After the withdrawal, the same face is refused.
  await gate.fill('#claim', subject);
  r = await result(gate, () => gate.click('#look'));
  check(r.kind === 'deny', `refused after the withdrawal: ${JSON.stringify(r)}`);

  // ---- The admin console.
  {
    const page = await open(plain);
    await signIn(page, 'admin', admin, 'login-admin');
    await a11y(page, 'admin');
    const alerts = await page.textContent('#h-alerts + *');
    check(/suspended/.test(alerts), `the console shows the suspension: ${alerts}`);
    await shot(page, 'admin');
    // Reinstate the suspended gate from the keys page; it works again.
    await visit(page, '/ui/admin/keys', 'admin-keys-suspended');
    await shot(page, 'admin-keys-suspended');
    await Promise.all([page.waitForURL('**/ui/admin/keys**'), page.click('form[action="/ui/admin/keys/reinstate"] button')]);
    check(!(await page.$('form[action="/ui/admin/keys/reinstate"]')), 'no suspended key left');
    // The gate answers again (its PIN entry stays locked for the failure window; the face
    // works: this camera shows someone else, a plain deny).
    await guesser.fill('#claim', subject);
    const back = await result(guesser, () => guesser.click('#look'));
    check(back.kind === 'deny' && back.text === 'Not allowed', `the reinstated gate works: ${JSON.stringify(back)}`);
    await guesser.fill('#pin', '480913');
    const locked = await result(guesser, () => guesser.click('#cred-form button[type="submit"]'));
    check(/wait/.test(locked.text), `PIN entry still locked: ${JSON.stringify(locked)}`);
    // A new key minted in the console is shown once.
    await page.selectOption('#role', 'device');
    await page.fill('#site', 'gate-3');
    await Promise.all([page.waitForURL('**/ui/admin/keys**'), page.click('form[action="/ui/admin/keys"] button[type="submit"]')]);
    check(/^cs_[0-9a-f]{64}$/.test((await page.textContent('#minted-key')).trim()), 'the new key is shown');
    await visit(page, '/ui/admin/subjects', 'admin-subjects');
    check((await page.textContent('main')).includes(subject), 'the subject is listed');
    await shot(page, 'admin-subjects');
    await visit(page, `/ui/admin/subject?id=${subject}`, 'admin-subject');
    await shot(page, 'admin-subject');
    await visit(page, '/ui/admin/keys', 'admin-keys');
    await shot(page, 'admin-keys');
    await visit(page, '/ui/admin/audit', 'admin-audit');
    const state = await page.textContent('#audit-state');
    check(/Verified up to entry \d+/.test(state), `audit log verified: ${state}`);
    const log = await page.textContent('#entries');
    for (const action of ['enrol', 'verify', 'consent.withdraw']) {
      check(log.includes(action), `the audit page lists ${action}`);
    }
    check(log.includes('deny') && log.includes('allow'), 'the audit page shows allow and deny');
    await shot(page, 'admin-audit');
    summary.audit_state = state;
  }

  // ---- Last, the person deletes everything; their token no longer opens anything.
  {
    const page = personPage;
    await page.goto(BASE + '/ui/me');
    // Without the tick box: refused, nothing deleted.
    await page.click('form[action="/ui/me/delete"] button[type="submit"]');
    await page.waitForLoadState();
    check((await page.textContent('main')).length > 0, 'page after an unticked delete');
    await page.goto(BASE + '/ui/me');
    check((await page.textContent('main')).includes(subject), 'still there without the tick');
    await page.check('form[action="/ui/me/delete"] input[type="checkbox"]');
    await Promise.all([page.waitForLoadState(), page.click('form[action="/ui/me/delete"] button[type="submit"]')]);
    await page.waitForSelector('h1');
    await shot(page, 'me-deleted');
    check(/deleted/i.test(await page.textContent('main')), 'the deletion is confirmed');
    check(dialogs.some((m) => /Delete everything about you/.test(m)), `asked before deleting: ${dialogs}`);
    await signInFails(page, token);
  }

  // ---- Face and voice: the tenant's verification policy needs both. The kiosk asks for the
  // voice after the face at enrolment, and records it with the photo at the gate.
  {
    const set = await api('PUT', '/api/v1/modality/policy', need('ADMIN_KEY'), { purpose: 'verification', modality: 'face_and_voice' });
    check(set.status === 200, `policy set: ${JSON.stringify(set)}`);
    const b = await launch(need('CAM_ENROL'), need('MIC'));
    const page = await open(b);
    await signIn(page, 'kiosk', need('OPERATOR_KEY'));
    await framed(page);
    await page.click('#tab-enrol');
    await page.check('input[name="purpose"][value="verification"]');
    await page.click('#agree');
    await page.waitForSelector('#capture:not([hidden])');
    await page.click('#take');
    await page.waitForSelector('#voice:not([hidden])', { timeout: 30000 });
    await a11y(page, 'kiosk-voice');
    await shot(page, 'kiosk-enrol-voice');
    await page.click('#record-voice');
    await page.waitForFunction(() => /\d/.test(document.getElementById('hint').textContent), null, { timeout: 10000 });
    await shot(page, 'kiosk-enrol-speaking');
    await page.waitForSelector('#done:not([hidden])', { timeout: 40000 });
    const voiced = (await page.$$eval('#receipt dd', (dds) => dds.map((d) => d.textContent)))[0];
    check(/^[0-9a-f]{32}$/.test(voiced), `enrolled with a voice: ${voiced}`);
    summary.voice_subject = voiced;

    const gateB = await launch(need('CAM_SAME'), need('MIC'));
    const g = await open(gateB);
    await signIn(g, 'kiosk', need('DEVICE_KEY'));
    await framed(g);
    await g.fill('#claim', voiced);
    const rv = await result(g, () => g.click('#look'));
    check(rv.kind === 'allow', `face and voice allowed: ${JSON.stringify(rv)}`);
    await shot(g, 'kiosk-face-voice-allow');
  }

  check(problems.length === 0, `problems:\n${problems.join('\n')}`);
  summary.screenshots = fs.readdirSync(SHOTS).length;
  console.log(JSON.stringify(summary));
}

try {
  await main();
} catch (e) {
  console.error(e.stack || String(e));
  if (problems.length) console.error(problems.join('\n'));
  // What each open page showed when it failed.
  let n = 0;
  for (const b of browsers) {
    for (const c of b.contexts()) {
      for (const p of c.pages()) {
        n += 1;
        console.error(`page ${n} at failure: ${p.url()}`);
        await p.screenshot({ path: path.join(SHOTS, `failure-${n}.png`), fullPage: true }).catch(() => {});
      }
    }
  }
  process.exitCode = 1;
} finally {
  for (const b of browsers) await b.close().catch(() => {});
}
