import { afterAll, describe, expect, it } from 'vitest';
import { callStack, freePort, type LocalStack, startStack } from './helpers/local-stack';

/**
 * Caps live in the Recipient object's storage, not its memory: restarting `npm start` (the local
 * state in .wrangler/ kept, as for a user) between sends does not reset them. Five SMS a user an
 * hour is the default cap: the 6th within the hour is deferred (`normal`), and dropped as
 * `rate_limited` when `low`.
 */

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let stack: LocalStack | undefined;

interface Accepted {
  id: string;
}
interface NotificationBody {
  deliveries: { status: string }[];
}

async function sms(userId: string, priority: string): Promise<string> {
  const accepted = await callStack<Accepted>(stack as LocalStack, 'POST', '/v1/notifications', {
    type: 'order_shipped',
    channels: ['sms'],
    priority,
    recipients: [userId],
    data: { order_id: `A-${RUN}`, carrier: 'DHL', tracking_url: 'https://example.com/t' },
  });
  return accepted.id;
}

/** Waits until the notification's SMS left `queued`, and returns its status. */
async function settled(id: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = await callStack<NotificationBody>(stack as LocalStack, 'GET', `/v1/notifications/${id}`);
    const status = body.deliveries[0]?.status ?? 'none';
    if (status !== 'queued' && status !== 'created') return status;
    if (Date.now() > deadline) throw new Error(`still ${status}:\n${stack?.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

afterAll(async () => {
  await stack?.stop();
});

describe('caps survive a restart of npm start', () => {
  it('the 6th SMS within the hour is deferred (normal) or rate_limited (low) after a restart', async () => {
    const port = await freePort(8797);
    const userId = `restart_${RUN}`;
    stack = await startStack(port);
    await callStack(stack, 'PUT', `/v1/contacts/${userId}`, { phone: '+14155550123' });
    const before = [];
    for (let i = 0; i < 3; i++) before.push(await settled(await sms(userId, 'normal')));
    expect(before).toEqual(['sent', 'sent', 'sent']);

    await stack.stop();
    stack = await startStack(port);
    const after = [];
    for (let i = 0; i < 2; i++) after.push(await settled(await sms(userId, 'normal')));
    expect(after).toEqual(['sent', 'sent']);
    expect(await settled(await sms(userId, 'normal'))).toBe('deferred');
    expect(await settled(await sms(userId, 'low'))).toBe('rate_limited');
  }, 600_000);
});
