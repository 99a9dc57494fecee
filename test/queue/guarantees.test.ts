import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Env } from '../../src/config/env';
import type { QueueMessage } from '../../src/queue/messages';
import { createServices } from '../../src/services/container';
import { suppressAddress } from '../../src/services/recipients/suppressions';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { delivery, readOutbox } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import {
  type CapturedEnv,
  enqueued,
  envWithCapturedQueues,
  resendSendgridEnv,
  runConsumer,
  sendNotification,
} from '../helpers/queues';
import { countAll, dbOfDelivery, router } from '../helpers/shards';

afterEach(() => vi.restoreAllMocks());

/** An SMS notification to one inline phone number (sandbox provider). */
function smsTo(phone: string, type = 'security_alert') {
  return { type, channels: ['sms'], recipients: [{ phone }] };
}

const phone = () => `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

/** What the sandbox captured for one delivery (every send it received): in its shard, none elsewhere. */
async function sendsOf(deliveryId: string): Promise<number> {
  const query = 'SELECT count(*) AS n FROM outbox WHERE delivery_id = ?';
  const row = await dbOfDelivery(deliveryId).prepare(query).bind(deliveryId).first<{ n: number }>();
  expect(await countAll(query, deliveryId)).toBe(row?.n ?? 0);
  return row?.n ?? 0;
}

/** Accepts one SMS notification and returns its delivery id and the message ingest enqueued. */
async function acceptSms(captured: CapturedEnv, type = 'security_alert') {
  const accepted = await sendNotification(captured, smsTo(phone(), type));
  const id = accepted.deliveries[0]?.id ?? '';
  const message = captured.queues.sms.sent.find((m) => m.body.deliveryIds.includes(id))?.body;
  if (!message) throw new Error('not enqueued');
  return { id, message };
}

/** A templates bucket whose reads of one type's templates fail, as an R2 outage would. */
function failingTemplatesOf(type: string): R2Bucket {
  return new Proxy(testEnv.TEMPLATES, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== 'get') return typeof value === 'function' ? value.bind(target) : value;
      return (key: string, ...rest: unknown[]) => {
        if (key.startsWith(`templates/${type}/`) && !key.endsWith('type.json'))
          return Promise.reject(new Error('R2: service unavailable'));
        return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
      };
    },
  });
}

describe('a provider answer is never repeated because of a later failure elsewhere (G1)', () => {
  it('an outcome D1 refuses travels with the id, is recorded later, and the message is never sent again', async () => {
    const captured = envWithCapturedQueues();
    const a = await acceptSms(captured);
    const b = await acceptSms(captured);
    const refusing = { ...captured.env, FAULT_D1_WRITE_RATE: '1' } as Env;
    const first = await runConsumer(refusing, 'herald-sms', [a.message, b.message]);
    expect(first.result.retryMessages).toEqual([]);
    expect([await sendsOf(a.id), await sendsOf(b.id)]).toEqual([1, 1]);
    expect((await delivery(a.id)).status).toBe('queued');
    // Each answer went on in a new message that carries it.
    const carried = captured.queues.sms.sent.slice(-2).map((m) => m.body as QueueMessage);
    expect(carried.flatMap((m) => Object.keys(m.outcomes ?? {})).sort()).toEqual([a.id, b.id].sort());
    expect(carried[0]?.outcomes?.[carried[0].deliveryIds[0] ?? '']).toMatchObject({
      status: 'sent',
      carries: 0,
    });

    const second = await runConsumer(captured.env, 'herald-sms', carried);
    expect(second.result.explicitAcks.sort()).toEqual(second.messageIds.sort());
    expect((await delivery(a.id)).status).toBe('sent');
    expect((await delivery(b.id)).status).toBe('sent');
    expect([await sendsOf(a.id), await sendsOf(b.id)]).toEqual([1, 1]);
  });

  it('while D1 keeps refusing, the answer keeps travelling, with a growing delay', async () => {
    const captured = envWithCapturedQueues();
    const a = await acceptSms(captured);
    const refusing = { ...captured.env, FAULT_D1_WRITE_RATE: '1' } as Env;
    await runConsumer(refusing, 'herald-sms', [a.message]);
    const once = captured.queues.sms.sent.at(-1);
    await runConsumer(refusing, 'herald-sms', [once?.body as QueueMessage]);
    const twice = captured.queues.sms.sent.at(-1);
    expect(twice?.body.outcomes?.[a.id]).toMatchObject({ status: 'sent', carries: 1 });
    expect(twice?.delaySeconds ?? 0).toBeGreaterThan(once?.delaySeconds ?? 0);
    expect(await sendsOf(a.id)).toBe(1);
  });

  it('a template read failing for one delivery retries that one; the others are sent and recorded', async () => {
    const captured = envWithCapturedQueues();
    const shipped = await acceptSms(captured, 'order_shipped');
    const alert = await acceptSms(captured, 'security_alert');
    const env = { ...captured.env, TEMPLATES: failingTemplatesOf('security_alert') } as Env;
    const run = await runConsumer(env, 'herald-sms', [shipped.message, alert.message]);
    expect((await delivery(shipped.id)).status).toBe('sent');
    expect(await sendsOf(shipped.id)).toBe(1);
    expect(await sendsOf(alert.id)).toBe(0);
    expect(run.result.retryMessages.map((m) => m.msgId)).toEqual([run.messageIds[1]]);
    expect(run.result.explicitAcks).toEqual([run.messageIds[0]]);
  });

  it('the same delivery id twice in one batch is sent once and settled once', async () => {
    const captured = envWithCapturedQueues();
    const a = await acceptSms(captured);
    const before = captured.queues.sms.sent.length;
    const run = await runConsumer(captured.env, 'herald-sms', [a.message, a.message]);
    expect(await sendsOf(a.id)).toBe(1);
    expect((await delivery(a.id)).status).toBe('sent');
    expect(run.result.explicitAcks.sort()).toEqual(run.messageIds.sort());
    expect(captured.queues.sms.sent.length).toBe(before);
  });
});

describe('a row that cannot be read fails alone (G6)', () => {
  it('an address that does not decrypt fails its delivery; the batch goes on', async () => {
    const captured = envWithCapturedQueues();
    const broken = await acceptSms(captured);
    const good = await acceptSms(captured);
    await dbOfDelivery(broken.id)
      .prepare('UPDATE deliveries SET address = ? WHERE id = ?')
      .bind('enc:v1:test1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', broken.id)
      .run();
    const run = await runConsumer(captured.env, 'herald-sms', [broken.message, good.message]);
    expect(run.result.retryMessages).toEqual([]);
    expect(await delivery(good.id)).toMatchObject({ status: 'sent' });
    const failed = await delivery(broken.id);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/^row cannot be read: /);
    expect(await sendsOf(broken.id)).toBe(0);
  });
});

describe('the final status is the furthest reached, whatever the order (G7)', () => {
  it.each(['delivered', 'bounced'] as const)(
    'a %s callback that lands between the answer and its record keeps its status',
    async (status) => {
      const captured = envWithCapturedQueues();
      const a = await acceptSms(captured);
      let landed = false;
      // The provider's callback is handled just before the consumer's outcome write reaches D1:
      // the delivery's shard.
      const shard = router().forId(a.id).name;
      const db = new Proxy((testEnv as unknown as Record<string, D1Database>)[shard] as D1Database, {
        get(target, property) {
          const value = Reflect.get(target, property, target);
          if (property !== 'batch') return typeof value === 'function' ? value.bind(target) : value;
          return async (statements: D1PreparedStatement[]) => {
            if (!landed) {
              landed = true;
              await createServices(testEnv).events.apply(
                [{ deliveryId: a.id, status, at: Date.now() }],
                Date.now(),
              );
            }
            return target.batch(statements);
          };
        },
      });
      await runConsumer({ ...captured.env, [shard]: db } as Env, 'herald-sms', [a.message]);
      const row = await delivery(a.id);
      expect(row.status).toBe(status);
      expect(row.providerMessageId).toBe(`sandbox-${a.id}`);
      expect(row.sentAt).not.toBeNull();
      expect(row.history.map((h) => h.status)).toEqual(['created', 'queued', status, 'sent']);
    },
  );
});

describe('suppressions are checked again at send time (G5)', () => {
  it('an address suppressed after acceptance is not sent to', async () => {
    const captured = envWithCapturedQueues();
    const number = phone();
    const accepted = await sendNotification(captured, smsTo(number));
    const id = accepted.deliveries[0]?.id ?? '';
    await suppressAddress(createServices(testEnv), { channel: 'sms', value: number }, 'failed');
    await runConsumer(captured.env, 'herald-sms', [enqueued(captured, 'sms', -1)]);
    expect(await delivery(id)).toMatchObject({
      status: 'suppressed',
      reason: 'address is on the suppression list (bounced, complained or unsubscribed)',
    });
    expect(await sendsOf(id)).toBe(0);
  });
});

describe('ingest under races and slow commits (G10)', () => {
  it('the orphan grace starts after the enqueue, not at the request', async () => {
    const captured = envWithCapturedQueues();
    let started = 0;
    const slow = new Proxy(testEnv.TEMPLATES, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          await new Promise((resolve) => setTimeout(resolve, 30));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    started = Date.now();
    const res = await api('POST', '/v1/notifications', smsTo(phone(), `order_shipped`), {
      env: { ...captured.env, TEMPLATES: slow } as Env,
    });
    expect(res.status).toBe(202);
    expect(enqueued(captured, 'sms', -1).at ?? 0).toBeGreaterThanOrEqual(started + 30);
  });

  it('a batch that loses an id race to a concurrent request answers 409 and writes nothing', async () => {
    const captured = envWithCapturedQueues();
    const raced = `race-${uniqueUser()}`;
    const fresh = `fresh-${uniqueUser()}`;
    let racing = true;
    const db = new Proxy(testEnv.DB, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property !== 'batch') return typeof value === 'function' ? value.bind(target) : value;
        return async (statements: D1PreparedStatement[]) => {
          if (racing) {
            racing = false;
            // The other request commits first, with a different body under the same id.
            const other = await api(
              'POST',
              '/v1/notifications',
              { id: raced, ...smsTo(phone()) },
              { env: captured.env },
            );
            expect(other.status).toBe(202);
          }
          return target.batch(statements);
        };
      },
    });
    const res = await api(
      'POST',
      '/v1/notifications/batch',
      {
        notifications: [
          { id: fresh, ...smsTo(phone()) },
          { id: raced, ...smsTo(phone()) },
        ],
      },
      { env: { ...captured.env, DB: db } as Env },
    );
    expect(res.status).toBe(409);
    expect((await json<{ error: { code: string } }>(res)).error.code).toBe('idempotency_conflict');
    expect(
      await testEnv.DB.prepare('SELECT key FROM notification_keys WHERE key = ?').bind(fresh).first(),
    ).toBeNull();
    expect(await readOutbox({ notificationId: fresh })).toEqual([]);
  });
});

describe('a timeout after the request left is an unknown outcome (G2)', () => {
  const timeout = () =>
    Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });

  it('an idempotent provider that timed out is retried on itself with the same key, never failed over', async () => {
    const captured = resendSendgridEnv();
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'u@example.com' }],
    });
    const id = accepted.deliveries[0]?.id ?? '';
    const calls = fakeFetch(() => {
      throw timeout();
    });
    const first = await runConsumer(captured.env, 'herald-email', [enqueued(captured, 'email')]);
    expect(calls.map((c) => new URL(c.url).host)).toEqual(['api.resend.com']);
    expect(first.result.explicitAcks).toEqual(first.messageIds);
    const retry = captured.queues.email.sent.at(-1)?.body as QueueMessage;
    expect(retry.pins).toEqual({ [id]: 'resend' });
    expect((await delivery(id)).reason).toMatch(
      /unknown outcome: .*retrying on resend with the same idempotency key/,
    );

    // The retry goes to Resend alone, with the same Idempotency-Key, even though Resend fails again.
    vi.restoreAllMocks();
    const again = fakeFetch(() => new Response('{"message":"busy"}', { status: 503 }));
    await runConsumer(captured.env, 'herald-email', [retry]);
    expect(again.map((c) => new URL(c.url).host)).toEqual(['api.resend.com']);
    expect(new Headers(again[0]?.init?.headers).get('Idempotency-Key')).toBe(id);
    expect(captured.queues.email.sent.at(-1)?.body.pins).toEqual({ [id]: 'resend' });
  });

  it('without an idempotency key a normal notification ends unknown; nothing is sent again', async () => {
    const captured = envWithCapturedQueues({ SANDBOX_TIMEOUT_RATE: '1' });
    const a = await acceptSms(captured, 'order_shipped');
    const run = await runConsumer(captured.env, 'herald-sms', [a.message]);
    expect(run.result.explicitAcks).toEqual(run.messageIds);
    const row = await delivery(a.id);
    expect(row.status).toBe('unknown');
    expect(row.reason).toMatch(/^unknown outcome: .*; not retried \(sandbox takes no idempotency key\)$/);
    expect(await sendsOf(a.id)).toBe(1);
  });

  it('a critical notification without an idempotency key is retried, pinned to the same provider', async () => {
    const captured = envWithCapturedQueues({ SANDBOX_TIMEOUT_RATE: '1' });
    const accepted = await sendNotification(captured, { ...smsTo(phone()), priority: 'critical' });
    const id = accepted.deliveries[0]?.id ?? '';
    await runConsumer(captured.env, 'herald-sms', [enqueued(captured, 'sms', -1)]);
    expect((await delivery(id)).status).toBe('queued');
    expect(captured.queues.sms.sent.at(-1)?.body.pins).toEqual({ [id]: 'sandbox' });
  });
});
