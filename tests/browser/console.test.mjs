// Browser tests of the operator console: playwright-core drives Debian's
// Chromium (never a downloaded browser) against the real payhook binary and
// a real redis-server, both started here on free loopback ports.
//
// Environment: CHROMIUM (the browser binary), PAYHOOK_BIN (the gateway),
// REDIS_SERVER (default: redis-server). Argument: --screenshots DIR writes
// one PNG per view there (the README's pictures live in docs/).
//
// Prints one line per test and a closing `browser: N passed, N failed`.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { chromium } from 'playwright-core';

const TOKEN = 'browser-test-token';
const STRIPE_SECRET = 'whsec_browser_test_secret';
const SHOP_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const WAIT = 15_000;

const args = process.argv.slice(2);
const shotsAt = args.indexOf('--screenshots');
const screenshots = shotsAt >= 0 ? resolve(args[shotsAt + 1]) : null;

// ---------------------------------------------------------------- processes

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function exited(child) {
  return new Promise((done) => (child.exitCode !== null ? done() : child.once('exit', done)));
}

async function stop(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited(child);
  clearTimeout(killer);
}

/** The shop's mapping reads the currency from `pointer`: wrong, its payments are dead-lettered. */
function config({ ports, redisPort, currency }) {
  return `
[server]
listen = "127.0.0.1:${ports.ingress}"
admin_listen = "127.0.0.1:${ports.admin}"
admin_token_env = "PAYHOOK_ADMIN_TOKEN"

[redis]
url = "redis://127.0.0.1:${redisPort}"

[processing]
workers = 2
max_attempts = 2
retry_base_ms = 100

[[sources]]
name = "stripe"
provider = "stripe"
secrets = ["${STRIPE_SECRET}"]

[[sources]]
name = "shop"
provider = "standard-webhooks"
secrets = ["${SHOP_SECRET}"]
[sources.mapping]
event_type = "/type"
succeeded_types = ["payment.succeeded"]
event_id = "/id"
payment_id = "/data/payment_id"
amount = "/data/total_amount"
currency = "${currency}"
`;
}

class Environment {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'payhook-browser-'));
    this.redisPort = await freePort();
    this.ports = { ingress: await freePort(), admin: await freePort() };
    this.redis = spawn(process.env.REDIS_SERVER || 'redis-server', [
      '--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir,
    ], { stdio: 'ignore' });
    await until('redis', () => this.redisCli('PING') === 'PONG');
    this.configPath = join(this.dir, 'payhook.toml');
    await this.startGateway('/data/curency');
    this.base = `http://127.0.0.1:${this.ports.ingress}`;
    this.admin = `http://127.0.0.1:${this.ports.admin}`;
  }

  redisCli(...command) {
    const options = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] };
    return execFileSync('redis-cli', ['-p', String(this.redisPort), ...command], options).trim();
  }

  async startGateway(currency) {
    writeFileSync(this.configPath, config({ ports: this.ports, redisPort: this.redisPort, currency }));
    this.gateway = spawn(process.env.PAYHOOK_BIN, ['serve', '--config', this.configPath], {
      env: { ...process.env, PAYHOOK_ADMIN_TOKEN: TOKEN, PAYHOOK_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'ignore', process.env.TEST_LOG ? 'inherit' : 'ignore'],
    });
    const ready = `http://127.0.0.1:${this.ports.ingress}/readyz`;
    await until('the gateway', async () => (await fetch(ready)).status === 200);
  }

  async restartGateway(currency) {
    await stop(this.gateway);
    await this.startGateway(currency);
  }

  async stopAll() {
    await stop(this.gateway);
    await stop(this.redis);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async post(source, body, headers) {
    const response = await fetch(`${this.base}/webhooks/${source}`, { method: 'POST', body, headers });
    await response.arrayBuffer();
    return { status: response.status, arrival: response.headers.get('x-payhook-arrival-id') };
  }

  /** A Stripe payment_intent.succeeded, signed as Stripe does. */
  async stripePayment(eventId, paymentId, amount = 2000, secret = STRIPE_SECRET) {
    const body = JSON.stringify({
      id: eventId, object: 'event', type: 'payment_intent.succeeded', created: 1721948610, livemode: false,
      data: { object: { id: paymentId, object: 'payment_intent', amount, amount_received: amount, currency: 'eur',
        status: 'succeeded', payment_method_types: ['card'], metadata: { order_id: 'o_1' }, livemode: false } },
    });
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    return this.post('stripe', body, { 'Stripe-Signature': `t=${t},v1=${v1}`, 'Content-Type': 'application/json' });
  }

  /** A Standard Webhooks payment.succeeded for the shop source. */
  async shopPayment(messageId, paymentId) {
    const body = JSON.stringify({ id: messageId, type: 'payment.succeeded',
      data: { payment_id: paymentId, total_amount: 1250, currency: 'EUR' } });
    const t = Math.floor(Date.now() / 1000);
    const key = Buffer.from(SHOP_SECRET.replace(/^whsec_/, ''), 'base64');
    const signature = createHmac('sha256', key).update(`${messageId}.${t}.${body}`).digest('base64');
    return this.post('shop', body, {
      'webhook-id': messageId, 'webhook-timestamp': String(t), 'webhook-signature': `v1,${signature}`,
    });
  }

  /** Waits until every stored arrival is processed. */
  async processed() {
    await until('processing', async () => {
      const stats = await (await fetch(`${this.admin}/admin/overview`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
      return stats.backlog.pending === 0 && stats.backlog.lag === 0;
    });
  }
}

// -------------------------------------------------------------- the tests

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `console-${name}.png`), fullPage: true });
}

async function signedIn(page, env) {
  await page.goto(`${env.admin}/console`);
  if (await page.locator('#view-overview').isVisible()) return;
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.locator('#view-overview').waitFor({ state: 'visible', timeout: WAIT });
}

async function search(page, query) {
  await page.click('#nav a[data-view=payments]');
  await page.fill('#search', query);
  await page.click('#search-form button[type=submit]');
}

const cellNumber = async (locator) => Number((await locator.textContent()).trim());

test('the page refuses a wrong token, keeps the right one in sessionStorage only, and sends strict headers', async ({ page, env }) => {
  const response = await page.goto(`${env.admin}/console`);
  const headers = response.headers();
  assert(headers['content-security-policy'].includes("default-src 'self'"), 'a content security policy');
  assert(!headers['content-security-policy'].includes('unsafe-inline'), 'no inline script or style allowed');
  assert(headers['x-frame-options'] === 'DENY', 'no framing');
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: WAIT });
  await shot(page, 'sign-in');
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.locator('#view-overview').waitFor({ state: 'visible', timeout: WAIT });
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('payhook.adminToken'),
    local: localStorage.length,
    cookie: document.cookie,
    url: location.href,
  }));
  assert(stored.session === TOKEN, 'the token is in sessionStorage');
  assert(stored.local === 0 && stored.cookie === '', 'never in localStorage or a cookie');
  assert(!stored.url.includes(TOKEN), 'never in the URL');
});

test('the overview counts move after signed webhooks arrive', async ({ page, env }) => {
  await signedIn(page, env);
  const stripe = page.locator('#sources tr[data-source="stripe"]');
  await stripe.waitFor({ timeout: WAIT });
  const before = await cellNumber(stripe.locator('td.accepted'));
  for (let i = 0; i < 3; i++) {
    const sent = await env.stripePayment(`evt_ov_${i}`, `pi_ov_${i}`);
    assert(sent.status === 200, `payment ${i} accepted`);
  }
  const forged = await env.stripePayment('evt_forged', 'pi_forged', 2000, 'whsec_wrong');
  assert(forged.status === 401, 'a forged webhook is refused');
  await page.locator('#sources tr[data-source="stripe"] td.accepted', { hasText: String(before + 3) }).waitFor({ timeout: WAIT });
  await stripe.locator('td.refused', { hasText: 'invalid_signature 1' }).waitFor({ timeout: WAIT });
  await page.locator('#sources tr[data-source="stripe"] td.published', { hasText: '3' }).waitFor({ timeout: WAIT });
  await page.waitForFunction(() => Number(document.getElementById('rate-arrivals').textContent) > 0, null, { timeout: WAIT });
  const verdict = await page.locator('#durability-verdict').textContent();
  assert(verdict.length > 1 && verdict !== '–', 'a durability verdict');
  if (screenshots) {
    // Half a minute of uneven traffic, so the pictured chart has a shape.
    for (let tick = 0; tick < 30; tick++) {
      const burst = [2, 5, 9, 6, 3, 8][tick % 6];
      await Promise.all([...Array(burst).keys()].map((i) => env.stripePayment(`evt_chart_${tick}_${i}`, `pi_chart_${tick}_${i}`)));
      if (tick % 7 === 3) await env.stripePayment(`evt_forged_${tick}`, 'pi_forged', 2000, 'whsec_wrong');
      await sleep(1000);
    }
  }
  await shot(page, 'overview');
});

test("a payment's story is found by payment id, provider event id and arrival id", async ({ page, env }) => {
  await signedIn(page, env);
  const first = await env.stripePayment('evt_story_1', 'pi_story');
  await env.processed();
  const second = await env.stripePayment('evt_story_2', 'pi_story');
  await env.processed();
  await search(page, 'pi_story');
  const payment = page.locator('.payment[data-key="stripe:pi_story"]');
  await payment.waitFor({ timeout: WAIT });
  await payment.locator('.verdict', { hasText: 'Published once' }).waitFor({ timeout: WAIT });
  const outcomes = await payment.locator('tr.moment').evaluateAll((rows) => rows.map((r) => r.dataset.outcome));
  assert(outcomes.join() === 'published,duplicate', `published then duplicate: ${outcomes}`);
  assert((await payment.textContent()).includes(first.arrival), 'the first arrival is named');
  await shot(page, 'payment-story');
  await search(page, 'evt_story_2');
  await page.locator('.payment[data-key="stripe:pi_story"] .tag', { hasText: 'by provider event id' }).waitFor({ timeout: WAIT });
  await search(page, second.arrival);
  await page.locator('.arrival', { hasText: 'verified on arrival' }).waitFor({ timeout: WAIT });
  await page.locator('.arrival', { hasText: 'processed' }).waitFor({ timeout: WAIT });
});

test('a dead letter is redriven from the console after its cause is fixed', async ({ page, env }) => {
  await signedIn(page, env);
  const sent = await env.shopPayment('msg_fix_1', 'pay_fix_1');
  assert(sent.status === 200, 'the shop payment is stored');
  await env.processed();
  await page.click('#nav a[data-view="dead-letters"]');
  await page.fill('#dlq-reason', 'schema_violation');
  await page.click('#dlq-filter button[type=submit]');
  const row = page.locator(`#dlq-table tr.letter:has(a:text-is("${sent.arrival}"))`);
  await row.waitFor({ timeout: WAIT });
  await row.locator('button', { hasText: 'Details' }).click();
  await page.locator('#dlq-detail', { hasText: 'Body SHA-256' }).waitFor({ timeout: WAIT });
  assert(!(await page.locator('#dlq-detail').textContent()).includes('pay_fix_1'), 'never the body');
  await shot(page, 'dead-letters');

  // Fix the cause: the shop's currency pointer, and restart the gateway.
  await env.restartGateway('/data/currency');
  await row.locator('input.pick').check();
  await page.click('#redrive-selected');
  await page.locator('#confirm').waitFor({ state: 'visible', timeout: WAIT });
  await page.click('#confirm-yes');
  await row.locator('td.result', { hasText: 'published: left the DLQ' }).waitFor({ timeout: WAIT });
  await page.locator('.redrive-results li', { hasText: 'published' }).waitFor({ timeout: WAIT });
  await shot(page, 'redrive');
  await search(page, 'pay_fix_1');
  const payment = page.locator('.payment[data-key="shop:pay_fix_1"]');
  await payment.locator('tr.moment[data-outcome="published"]', { hasText: 'redrive' }).waitFor({ timeout: WAIT });
});

test('a dry-run replay shows its counts first, then the replay runs', async ({ page, env }) => {
  await signedIn(page, env);
  await env.processed();
  await page.click('#nav a[data-view=replay]');
  await page.selectOption('#replay-source', 'stripe');
  assert(await page.locator('#replay-run').isDisabled(), 'no replay before a dry run');
  await page.click('#replay-dry');
  const dry = page.locator('#replay-dry-result');
  await dry.waitFor({ timeout: WAIT });
  const matched = await cellNumber(dry.locator('[data-count=matched] .n'));
  const wouldPublish = await cellNumber(dry.locator('[data-count=published] .n'));
  const duplicate = await cellNumber(dry.locator('[data-count=duplicate] .n'));
  assert(matched >= 5 && wouldPublish === 0 && duplicate === matched, `dry run: ${matched} ${wouldPublish} ${duplicate}`);
  await shot(page, 'replay');
  await page.click('#replay-run');
  await page.click('#confirm-yes');
  const done = page.locator('#replay-run-result');
  await done.waitFor({ timeout: WAIT });
  assert((await cellNumber(done.locator('[data-count=published] .n'))) === 0, 'nothing is published twice');
  assert((await cellNumber(done.locator('[data-count=matched] .n'))) === matched, 'the same range');
});

test('markup in a payment id, a source or a reason stays inert text', async ({ page, env }) => {
  await signedIn(page, env);
  const script = '<script>window.__xss=1</script>';
  const image = '"><img/src=x/onerror=window.__xss=2>';
  for (const [i, id] of [script, image].entries()) {
    const sent = await env.stripePayment(`evt_xss_${i}`, id);
    assert(sent.status === 200, 'stored like any payment');
  }
  await env.processed();
  // A value in Redis written by anyone else must be just as inert.
  const markup = '<script>window.__xss=3</script><b>bold</b>"><img src=x onerror="window.__xss=4">';
  env.redisCli('XADD', 'payhook:dlq', '*', 'arrival_id', '1-0', 'source', 'stripe', 'reason', 'schema_violation',
    'error', markup, 'attempts', '1', 'failed_at', new Date().toISOString());
  // One payhook did not write: its source is not a source name, so it shows as unreadable.
  env.redisCli('XADD', 'payhook:dlq', '*', 'arrival_id', '2-0', 'source', '<script>window.__xss=5</script>',
    'reason', '"><img src=x onerror="window.__xss=6">', 'error', '<b>bold</b>', 'attempts', '1',
    'failed_at', new Date().toISOString());
  for (const [id, shown] of [[script, script], [image, image]]) {
    await search(page, id);
    const key = page.locator('.payment code.payment-key');
    await key.waitFor({ timeout: WAIT });
    assert((await key.textContent()) === `stripe:${shown}`, 'the id is shown as typed');
  }
  await search(page, '<img/src=x/onerror=window.__xss=5>');
  await page.locator('#story-none code.query').waitFor({ timeout: WAIT });
  await page.click('#nav a[data-view="dead-letters"]');
  await page.fill('#dlq-reason', '');
  await page.click('#dlq-filter button[type=submit]');
  const injected = page.locator('#dlq-table tr.letter', { hasText: 'window.__xss=3' });
  await injected.waitFor({ timeout: WAIT });
  assert((await injected.locator('td.error-text').textContent()) === markup, 'error text as text');
  const unreadable = page.locator('#dlq-table tr.letter', { hasText: 'unreadable' });
  await unreadable.waitFor({ timeout: WAIT });
  const executed = await page.evaluate(() => ({
    xss: window.__xss,
    images: document.querySelectorAll('main img').length,
    scripts: document.querySelectorAll('main script').length,
    bold: document.querySelectorAll('main b').length,
  }));
  assert(executed.xss === undefined, 'no injected script ran');
  assert(executed.images === 0 && executed.scripts === 0 && executed.bold === 0, 'no injected element exists');
});

// -------------------------------------------------------------- the runner

async function main() {
  const env = new Environment();
  let browser;
  let [passed, failed] = [0, 0];
  try {
    await env.start();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-default-apps', '--disable-domain-reliability', '--metrics-recording-only'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    for (const { name, fn } of tests) {
      const page = await context.newPage();
      const problems = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      // Failed loads (the 401 of a wrong token, the gateway restarting) are
      // the browser's own notes; a script error or a CSP refusal is not.
      page.on('console', (message) => {
        const line = message.text();
        if (message.type() === 'error' && !line.startsWith('Failed to load resource')) problems.push(`console: ${line}`);
      });
      try {
        await fn({ page, env });
        assert(problems.length === 0, problems.join('; '));
        passed++;
        console.log(`ok - ${name}`);
      } catch (error) {
        failed++;
        console.log(`not ok - ${name}\n  ${String(error.stack || error).split('\n').slice(0, 6).join('\n  ')}`);
      } finally {
        await page.close();
      }
    }
  } catch (error) {
    failed++;
    console.log(`not ok - setting up: ${error.message}`);
  } finally {
    if (browser) await browser.close();
    await env.stopAll();
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

await main();
