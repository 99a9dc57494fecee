import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { createServices } from '../../src/services/container';
import { ADMIN_KEY, api, json, testEnv, uniqueUser } from '../helpers/api';
import { atTime, enqueued, envWithCapturedQueues, runConsumer, sendNotification } from '../helpers/queues';

interface Listed {
  deliveryId: string;
  channel: string;
  idempotentRepeat: boolean;
}

async function outboxOf(userId: string): Promise<Listed[]> {
  const res = await api('GET', `/v1/outbox?userId=${userId}`);
  expect(res.status).toBe(200);
  return (await json<{ data: Listed[] }>(res)).data;
}

/** Captures one message twice for `deliveryId`, as the sandbox does when a delivery is sent again. */
async function captureTwice(userId: string, channel: 'email' | 'sms', deliveryId: string) {
  const services = createServices(testEnv);
  const address =
    channel === 'email'
      ? ({ channel, email: 'ada@example.com' } as const)
      : ({ channel, phone: '+14155550123' } as const);
  const entry = {
    deliveryId,
    notificationId: 'ntf_outbox',
    userId,
    channel,
    address,
    message: { text: 'Hi' },
  };
  await services.outbox.insertStatement(entry, Date.now()).run();
  await services.outbox.insertStatement(entry, Date.now() + 1).run();
}

describe('outbox', () => {
  it('keeps a repeat on an idempotent channel and marks it idempotentRepeat; a repeat elsewhere is a plain second row', async () => {
    const userId = uniqueUser('outbox');
    await captureTwice(userId, 'email', 'dlv_outboxemail');
    await captureTwice(userId, 'sms', 'dlv_outboxsms');
    const rows = await outboxOf(userId);
    const of = (deliveryId: string) => rows.filter((r) => r.deliveryId === deliveryId);
    // Newest first: the repeat, then the first send.
    expect(of('dlv_outboxemail').map((r) => r.idempotentRepeat)).toEqual([true, false]);
    expect(of('dlv_outboxsms').map((r) => r.idempotentRepeat)).toEqual([false, false]);
  });

  it('a delivery sent again after a sandbox timeout is in the outbox twice, the repeat marked', async () => {
    const userId = uniqueUser('timeout');
    const timingOut = envWithCapturedQueues({ SANDBOX_TIMEOUT_RATE: '1' });
    const accepted = await sendNotification(timingOut, {
      type: 'security_alert',
      priority: 'critical',
      recipients: [{ userId, email: 'ada@example.com' }],
      channels: ['email'],
    });
    const first = await runConsumer(timingOut.env, 'herald-email', [enqueued(timingOut, 'email')]);
    expect(first.result.explicitAcks).toEqual(first.messageIds);
    // The sandbox accepted it and answered too late: the delivery goes again to the sandbox only.
    const again = enqueued(timingOut, 'email', 1);
    expect(again.pins).toEqual({ [accepted.deliveries[0]?.id ?? '']: 'sandbox' });
    const answering = { ...timingOut.env, SANDBOX_TIMEOUT_RATE: '0' } as Env;
    await atTime(Date.now() + 60_000, () => runConsumer(answering, 'herald-email', [again]));
    const rows = await outboxOf(userId);
    expect(rows.map((r) => [r.deliveryId, r.idempotentRepeat])).toEqual([
      [accepted.deliveries[0]?.id, true],
      [accepted.deliveries[0]?.id, false],
    ]);
  });

  it('the dashboard outbox page marks an idempotent repeat', async () => {
    const userId = uniqueUser('dash');
    await captureTwice(userId, 'email', 'dlv_outboxdashboard');
    const login = await api('POST', '/dashboard/login', new URLSearchParams({ key: ADMIN_KEY }).toString(), {
      key: null,
      headers: { Origin: 'https://herald.test', 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    const cookie = (login.headers.get('Set-Cookie') ?? '').split(';')[0] ?? '';
    const res = await api('GET', '/dashboard/outbox?channel=email', undefined, {
      key: null,
      headers: { Cookie: cookie },
    });
    const page = await res.text();
    expect(page).toMatch(
      /<span class="badge neutral" title="Sent again with the same idempotency key[^"]*">\s*repeat\s*<\/span>/,
    );
  });
});
