import { afterEach, describe, expect, it, vi } from 'vitest';
import { delivery } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import { drainQueue, resendSendgridEnv, sendNotification } from '../helpers/queues';
import { dbOfDelivery } from '../helpers/shards';

// Its own file: the circuit breakers live in the isolate and would stay open for other tests.

afterEach(() => vi.restoreAllMocks());

describe('consumer: every circuit open', () => {
  it('waits for the circuit without calling anyone and without using an attempt', async () => {
    const captured = resendSendgridEnv({ EMAIL_PROVIDERS: 'resend' });
    const calls = fakeFetch(() => new Response('{"message":"unavailable"}', { status: 503 }));
    const send = async (email: string) =>
      (await sendNotification(captured, { type: 'security_alert', recipients: [{ email }] })).deliveries[0]
        ?.id ?? '';

    // Five failures in a row open Resend's circuit (threshold 5).
    for (let i = 0; i < 5; i++) await send(`down${i}@example.com`);
    await drainQueue(captured, 'email');
    expect(calls).toHaveLength(5);

    const id = await send('later@example.com');
    const {
      bodies: [message],
      result,
      messageIds,
    } = await drainQueue(captured, 'email');
    expect(calls).toHaveLength(5);
    expect(result.explicitAcks).toEqual(messageIds);
    expect(result.retryMessages).toEqual([]);
    const [resent] = captured.queues.email.sent;
    expect(resent?.body).toMatchObject({ deliveryIds: [id], attempt: message?.attempt });
    expect(resent?.delaySeconds).toBeGreaterThanOrEqual(25);
    const d = await delivery(id);
    expect(d.status).toBe('queued');
    expect(d.attempts).toBe(0);
    expect(d.reason).toMatch(/circuit is open/);

    // A day on, open circuits count again, so a delivery cannot wait forever on a dead provider.
    await dbOfDelivery(id)
      .prepare('UPDATE deliveries SET created_at = ? WHERE id = ?')
      .bind(Date.now() - 25 * 3600 * 1000, id)
      .run();
    await drainQueue(captured, 'email');
    expect(calls).toHaveLength(5);
    expect((await delivery(id)).attempts).toBe(1);
  });
});
