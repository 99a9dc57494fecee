import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServices } from '../../src/services/container';
import { raiseAlert } from '../../src/services/operations/alerts';
import { brokenD1, insertDeliveries } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import { atTime, envWithCapturedQueues, runCron, unusedCronTime } from '../helpers/queues';
import { everyDatabase } from '../helpers/shards';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const MINUTE = 60_000;

/** A webhook URL of its own, and the texts posted to it. */
function alertWebhook() {
  const url = `https://hooks.example.com/alerts/${crypto.randomUUID()}`;
  const calls = fakeFetch(() => new Response('ok'));
  const texts = () =>
    calls
      .filter((c) => c.url === url)
      .map((c) => (JSON.parse(String(c.init?.body)) as { text: string }).text);
  return { url, texts };
}

describe('the minute cron under faults', () => {
  it('with D1 down, every step still runs and each failure reaches the webhook directly, once per few minutes', async () => {
    const webhook = alertWebhook();
    // D1 down: the home database and every shard.
    const { env } = envWithCapturedQueues({
      ...everyDatabase((db) => brokenD1(db)),
      ALERT_WEBHOOK_URL: webhook.url,
    });
    const at = unusedCronTime(true);

    await atTime(at, () => runCron(env, at));
    const first = webhook.texts();
    for (const step of ['sweeper', 'reaper', 'retention', 'backlog', 'replay-keys', 'digest']) {
      expect(
        first.filter((text) => text.includes(`the cron's ${step} step failed: Error: D1_ERROR`)),
      ).toHaveLength(1);
    }
    expect(first).toHaveLength(6);
    expect(first[0]).toContain('sent directly: D1 could not store this alert');

    // The outage goes on: the next minutes do not repeat what was just said ...
    await atTime(at + MINUTE, () => runCron(env, at + MINUTE));
    await atTime(at + 2 * MINUTE, () => runCron(env, at + 2 * MINUTE));
    expect(webhook.texts()).toHaveLength(6);
    // ... and a few minutes later the operator hears it again.
    await atTime(at + 6 * MINUTE, () => runCron(env, at + 6 * MINUTE));
    // (the hourly steps, reaper and retention, do not run at minute 6)
    expect(webhook.texts()).toHaveLength(10);
  });

  it('a failing sweeper skips neither the other steps nor the alert digest, and is in it', async () => {
    const webhook = alertWebhook();
    // The sweeper's read of the rows to claim (then its count and UPDATE, only when it found some).
    const claim = /SELECT id FROM deliveries WHERE id > \? AND id < \? AND status = 'created' AND updated_at/;
    // The sweeper's claim fails wherever it runs: in every shard.
    const { env, queues } = envWithCapturedQueues({
      ...everyDatabase((db) => brokenD1(db, claim)),
      ALERT_WEBHOOK_URL: webhook.url,
    });
    const at = unusedCronTime(true);
    // A delivery the reaper re-enqueues in the same run (the sweeper fails before it).
    const [lost] = await insertDeliveries({
      count: 1,
      atMs: at - 3 * 24 * 60 * MINUTE,
      status: 'queued',
      channel: 'sms',
    });
    await atTime(at, () =>
      raiseAlert(createServices(env), 'test:pending', 'something the operator must see'),
    );

    await atTime(at, () => runCron(env, at));
    expect(queues.sms.ids()).toEqual([lost]);
    const digest = webhook.texts().join('\n');
    expect(digest).toContain('something the operator must see');
    expect(digest).toContain("the cron's sweeper step failed");
    expect(digest).not.toContain('sent directly');
  });
});
