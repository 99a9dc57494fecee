import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardMapOf } from '../../../scripts/lib/databases.mjs';
import { DEFAULT_DATABASE, parseShardMap } from '../../../src/domain/shards';
import { bucketOfId } from '../../../src/lib/ids';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/chromium';
import {
  ADMIN_KEY,
  BIN_PATH,
  callStack,
  freePort,
  type LocalStack,
  ROOT,
  startStack,
} from '../helpers/local-stack';

/**
 * The dashboard in a real browser against the local stack started the way a user starts it
 * (`node scripts/start.mjs`, i.e. `npm start`). The local D1 state in .wrangler/ persists between
 * runs and is shared with the user's own `npm start`, so every user id here is unique.
 */

const ARTIFACTS = join(ROOT, 'test-artifacts');
const KEY = ADMIN_KEY;
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

if (!hasChromium) console.warn(`skipping the browser tests: no Chromium at ${CHROMIUM} (CI installs it)`);

let stack: LocalStack | undefined;
let browser: Browser | undefined;
let page: Page;
let base = '';

function herald<T>(method: string, path: string, body?: unknown): Promise<T> {
  return callStack<T>(stack as LocalStack, method, path, body);
}

interface Accepted {
  id: string;
  deliveries: { id: string; channel: string; status: string }[];
}
interface NotificationBody {
  deliveries: { id: string; status: string; history: { status: string; reason?: string }[] }[];
}

function send(userId: string, extra: Record<string, unknown> = {}, sendAt?: Date): Promise<Accepted> {
  return herald<Accepted>('POST', '/v1/notifications', {
    type: 'payment_reminder',
    recipients: [{ userId, email: `${userId}@example.com`, phone: '+14155550123', ...extra }],
    data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01', name: 'Ada' },
    ...(sendAt ? { sendAt: sendAt.toISOString() } : {}),
  });
}

async function waitUntilSent(id: string): Promise<NotificationBody> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = await herald<NotificationBody>('GET', `/v1/notifications/${id}`);
    if (body.deliveries.every((d) => d.status === 'sent')) return body;
    if (Date.now() > deadline) throw new Error(`not sent in time: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The database binding a delivery lives in: its id names its bucket, and wrangler.toml's
 * `SHARD_MAP` maps buckets to shard databases (the home database `DB` without one).
 */
function databaseOf(deliveryId: string): string {
  const parsed = parseShardMap(shardMapOf(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')));
  if (!('map' in parsed)) throw new Error(`SHARD_MAP: ${parsed.problem}`);
  return parsed.map[bucketOfId(deliveryId) ?? 0] ?? DEFAULT_DATABASE;
}

/** Runs SQL against the same local D1 state the running stack uses, as a user would. */
function d1(database: string, sql: string): void {
  const result = spawnSync('wrangler', ['d1', 'execute', database, '--local', '--command', sql], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: BIN_PATH, CI: 'true', WRANGLER_SEND_METRICS: 'false' },
  });
  if (result.status !== 0) throw new Error(`wrangler d1 execute failed:\n${result.stdout}\n${result.stderr}`);
}

async function shot(name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

describe.skipIf(!hasChromium)('dashboard in a real browser (npm start + Chromium)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack(await freePort(8799));
    base = stack.base;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('a wrong key stays on the login form; the admin key opens the overview', async () => {
    await page.goto(`${base}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    await page.fill('input[name="key"]', 'not-the-key');
    await page.click('button[type="submit"]');
    await expect.poll(() => page.textContent('body')).toContain('That key is not the admin key.');
    await page.fill('input[name="key"]', KEY);
    await page.click('button[type="submit"]');
    await page.waitForURL(`${base}/dashboard`);
    expect(await page.textContent('h1')).toBe('Overview');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'herald_session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/dashboard' });
    expect(session?.value).not.toContain(KEY);
  });

  it('a notification sent through the API shows in the list, and its timeline reaches sent', async () => {
    const userId = `browser_${RUN}_timeline`;
    const accepted = await send(userId);
    expect(accepted.deliveries.map((d) => d.channel).sort()).toEqual(['email', 'sms']);

    await page.goto(`${base}/dashboard/notifications?userId=${userId}`);
    await page.click(`a[href="/dashboard/notifications/${accepted.id}"]`);
    await page.waitForURL(`${base}/dashboard/notifications/${accepted.id}`);
    // The consumer runs in the background: reload until both deliveries show `sent`.
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.$$eval('.delivery h2 .badge', (badges) => badges.map((b) => b.textContent));
        },
        { timeout: 60_000, interval: 1000 },
      )
      .toEqual(['sent', 'sent']);
    const timeline = await page.$$eval(`[id="${accepted.deliveries[0]?.id}"] tbody .badge`, (badges) =>
      badges.map((b) => b.textContent),
    );
    expect(timeline).toEqual(['created', 'queued', 'sent']);
    expect(await page.textContent('body')).toContain('Rendered message');
    await shot('notification');
  });

  it('a dead letter is listed and replayed from the browser', async () => {
    // Scheduled a little ahead, so no consumer sends it while it is turned into a dead letter.
    const userId = `browser_${RUN}_dead`;
    const sendAt = Date.now() + 10_000;
    const accepted = await send(userId, { phone: undefined }, new Date(sendAt));
    const deliveryId = accepted.deliveries[0]?.id;
    expect(deliveryId).toMatch(/^dlv_[0-9a-z]+$/);
    // As if its attempts had been spent: failed with a reason, and in dead_letters (both in the
    // delivery's shard).
    const failed = JSON.stringify({
      status: 'failed',
      at: new Date().toISOString(),
      reason: 'browser test: attempts spent',
    });
    d1(
      databaseOf(deliveryId ?? ''),
      `UPDATE deliveries SET status = 'failed', reason = 'browser test: attempts spent',
         history = json_insert(history, '$[#]', json('${failed}'))
       WHERE id = '${deliveryId}' AND status = 'queued';
       INSERT INTO dead_letters (delivery_id, channel, reason, created_at)
       VALUES ('${deliveryId}', 'email', 'browser test: attempts spent', ${Date.now()});`,
    );
    const marked = await herald<NotificationBody>('GET', `/v1/notifications/${accepted.id}`);
    expect(marked.deliveries[0]?.status).toBe('failed');
    // Past its send time its original queue message finds it failed and leaves it alone; the
    // replay's message then needs no delay (delayed local messages do not survive a reload).
    await new Promise((r) => setTimeout(r, Math.max(0, sendAt + 3000 - Date.now())));

    await page.goto(`${base}/dashboard/dead-letters?channel=email`);
    const row = page.locator('tr', { has: page.locator(`input[value="${deliveryId}"]`) });
    expect(await row.textContent()).toContain('browser test: attempts spent');
    await shot('dead-letters');
    await row.locator('button', { hasText: 'Replay' }).click();
    await page.waitForURL(/\/dashboard\/dead-letters\?replayed=1$/);
    expect(await page.textContent('.flash')).toBe('Replayed 1 delivery.');
    expect(await page.locator(`input[value="${deliveryId}"]`).count()).toBe(0);

    // Replayed with fresh attempts, it goes out.
    const after = await waitUntilSent(accepted.id);
    const history = after.deliveries[0]?.history ?? [];
    expect(history).toContainEqual(
      expect.objectContaining({ reason: 'replayed from the dead-letter queue' }),
    );
    expect(history.at(-1)?.status).toBe('sent');
  });

  it('the overview, for the README', async () => {
    // A little traffic on every channel, so the chart has something to show.
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        send(`browser_${RUN}_overview_${i}`, {
          ...(i % 2 === 0
            ? {
                deviceTokens: [
                  { deviceToken: `fcm-${'x'.repeat(40)}:APA91b${'Q'.repeat(120)}`, platform: 'fcm' },
                ],
              }
            : {}),
          ...(i % 3 === 0
            ? {
                externalChannels: [
                  { platform: 'slack', url: 'https://hooks.slack.com/services/T000/B000/XXXXXXXX' },
                ],
              }
            : {}),
        }),
      ),
    );
    await Promise.all(results.map((r) => waitUntilSent(r.id)));
    await page.goto(`${base}/dashboard?window=1h`);
    expect(await page.locator('svg.chart rect.ch-email').count()).toBeGreaterThan(0);
    expect(await page.textContent('body')).toContain('Status funnel');
    const path = await shot('overview');
    // The README's picture is refreshed on request only, so a test run leaves the tree clean.
    const readmeShot = join(ROOT, 'docs', 'dashboard.png');
    if (process.env.UPDATE_SCREENSHOTS === '1' || !existsSync(readmeShot)) copyFileSync(path, readmeShot);
    await page.goto(`${base}/dashboard/providers`);
    await shot('providers');
  });
});
