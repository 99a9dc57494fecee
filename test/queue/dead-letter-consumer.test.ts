import { afterEach, describe, expect, it, vi } from 'vitest';
import { brokenD1, delivery, insertDeliveries } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import { envWithCapturedQueues, runConsumer } from '../helpers/queues';
import { dbOfDelivery, everyDatabase } from '../helpers/shards';

afterEach(() => vi.restoreAllMocks());

describe('dead-letter consumer', () => {
  it('a DLQ batch whose D1 write fails is retried with a delay growing with its attempts, never acked', async () => {
    const webhook = `https://hooks.example.com/dlq/${crypto.randomUUID()}`;
    const captured = envWithCapturedQueues({
      ...everyDatabase((db) => brokenD1(db)),
      ALERT_WEBHOOK_URL: webhook,
    });
    const calls = fakeFetch(() => new Response('ok'));
    const [first, second, third] = await insertDeliveries({ count: 3, atMs: Date.now(), status: 'queued' });
    const bodies = [first, second, third].map((id) => ({
      v: 1 as const,
      deliveryIds: [id ?? ''],
      attempt: 8,
    }));

    // The queue's delivery counts: a first try, the seventh (a few minutes into an outage), the 60th.
    const { result, messageIds, retryDelays } = await runConsumer(
      captured.env,
      'herald-email-dlq',
      bodies,
      [1, 7, 60],
    );
    expect(result.explicitAcks).toEqual([]);
    expect(result.ackAll).toBe(false);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(messageIds);
    expect(messageIds.map((id) => retryDelays.get(id))).toEqual([30, 1800, 1800]);
    const between = await runConsumer(captured.env, 'herald-email-dlq', bodies.slice(0, 1), 4);
    expect(between.retryDelays.get(between.messageIds[0] ?? '')).toBe(240);

    // Nothing was recorded, and the operator hears of it although D1 cannot store the alert.
    expect((await delivery(first ?? '')).status).toBe('queued');
    const posted = calls.filter((c) => c.url === webhook).map((c) => String(c.init?.body));
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain('3 email dead-letter messages could not be recorded and are retried');
  });

  it('once D1 answers again, the retried batch is recorded and acked', async () => {
    const captured = envWithCapturedQueues();
    const [id] = await insertDeliveries({ count: 1, atMs: Date.now(), status: 'queued' });
    const { result, messageIds } = await runConsumer(
      captured.env,
      'herald-email-dlq',
      [{ v: 1, deliveryIds: [id ?? ''], attempt: 8 }],
      12,
    );
    expect(result.explicitAcks).toEqual(messageIds);
    expect(await delivery(id ?? '')).toMatchObject({ status: 'failed' });
  });

  it('a provider answer the message carried is recorded as it is, never turned into a replayable dead letter', async () => {
    const captured = envWithCapturedQueues();
    const [sent, refused] = await insertDeliveries({ count: 2, atMs: Date.now(), status: 'queued' });
    const outcomes = {
      [sent ?? '']: {
        status: 'sent' as const,
        provider: 'sandbox',
        providerMessageId: 'sb-1',
        attempted: true,
        carries: 3,
      },
      [refused ?? '']: {
        status: 'failed' as const,
        reason: 'sandbox: 400 invalid',
        attempted: true,
        carries: 3,
      },
    };
    const { result, messageIds } = await runConsumer(captured.env, 'herald-email-dlq', [
      { v: 1, deliveryIds: [sent ?? '', refused ?? ''], attempt: 8, outcomes },
    ]);
    expect(result.explicitAcks).toEqual(messageIds);
    expect(await delivery(sent ?? '')).toMatchObject({ status: 'sent', providerMessageId: 'sb-1' });
    expect(await delivery(refused ?? '')).toMatchObject({ status: 'failed', reason: 'sandbox: 400 invalid' });
    const listed = await dbOfDelivery(sent ?? '')
      .prepare('SELECT delivery_id FROM dead_letters WHERE delivery_id IN (?, ?) AND replayed_at IS NULL')
      .bind(sent ?? '', refused ?? '')
      .all<{ delivery_id: string }>();
    expect(listed.results.map((r) => r.delivery_id)).toEqual([refused]);
  });
});
