import { createExecutionContext, createScheduledController } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { fakeFetch } from '../helpers/fetch';
import { type CapturedEnv, envWithCapturedQueues, resendSendgridEnv, runConsumer } from '../helpers/queues';

interface Accepted {
  id: string;
  deliveries: { id: string; channel: string; status: string }[];
}
interface Delivery {
  id: string;
  status: string;
  reason: string | null;
  provider: string | null;
  attempts: number;
  history: { status: string; reason?: string }[];
}

afterEach(() => vi.restoreAllMocks());

async function send(captured: CapturedEnv, body: Record<string, unknown>): Promise<Accepted> {
  const res = await api('POST', '/v1/notifications', body, { env: captured.env });
  expect(res.status).toBe(202);
  return json<Accepted>(res);
}

async function deliveries(notificationId: string): Promise<Delivery[]> {
  return (await json<{ deliveries: Delivery[] }>(await api('GET', `/v1/notifications/${notificationId}`)))
    .deliveries;
}

async function cron(env: CapturedEnv['env'], at = Date.now()) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: '* * * * *' }), env, ctx);
}

describe('provider switches', () => {
  it('a provider switched off is skipped without a deploy, and switched on again', async () => {
    const captured = resendSendgridEnv();
    const off = await api('PUT', '/v1/admin/providers/resend', { enabled: false }, { env: captured.env });
    expect(off.status).toBe(200);
    expect(await json(off)).toEqual({ name: 'resend', enabled: false });
    try {
      const accepted = await send(captured, {
        type: 'security_alert',
        recipients: [{ email: 'a@example.com' }],
      });
      const calls = fakeFetch(() => new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-1' } }));
      const body = captured.queues.email.sent[0]?.body;
      if (!body) throw new Error('nothing enqueued');
      await runConsumer(captured.env, 'herald-email', [body]);
      expect(calls.map((c) => new URL(c.url).host)).toEqual(['api.sendgrid.com']);
      expect((await deliveries(accepted.id))[0]).toMatchObject({ status: 'sent', provider: 'sendgrid' });

      const listed = await json<{
        data: {
          name: string;
          channel: string;
          enabled: boolean;
          listed: boolean;
          order: number | null;
          credentials: string;
        }[];
      }>(await api('GET', '/v1/admin/providers', undefined, { env: captured.env }));
      expect(listed.data.find((p) => p.name === 'resend')).toMatchObject({
        channel: 'email',
        enabled: false,
        listed: true,
        order: 1,
        credentials: 'ok',
      });
      expect(listed.data.find((p) => p.name === 'postmark')).toMatchObject({ listed: false, enabled: true });
    } finally {
      await api('PUT', '/v1/admin/providers/resend', { enabled: true }, { env: captured.env });
    }
  });

  it('the provider list names missing credentials', async () => {
    const captured = envWithCapturedQueues({ SMS_PROVIDERS: 'twilio' });
    const listed = await json<{ data: { name: string; credentials: string }[] }>(
      await api('GET', '/v1/admin/providers', undefined, { env: captured.env }),
    );
    expect(listed.data.find((p) => p.name === 'twilio')?.credentials).toMatch(
      /^missing: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN/,
    );
  });

  it('an unknown provider is 404 and a bad body 422', async () => {
    expect((await api('PUT', '/v1/admin/providers/carrier-pigeon', { enabled: false })).status).toBe(404);
    expect((await api('PUT', '/v1/admin/providers/resend', { enabled: 'no' })).status).toBe(422);
  });
});

describe('dead letters', () => {
  it('the DLQ consumer fails the delivery, lists it, alerts once, and replay re-enqueues it with fresh attempts', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await send(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }],
    });
    const id = accepted.deliveries[0]?.id ?? '';
    await testEnv.DB.prepare(
      "UPDATE deliveries SET attempts = 8, reason = 'retry in 5s: resend: 503' WHERE id = ?",
    )
      .bind(id)
      .run();
    await runConsumer(captured.env, 'herald-email-dlq', [{ v: 1, deliveryIds: [id], attempt: 8 }]);
    expect((await deliveries(accepted.id))[0]).toMatchObject({
      status: 'failed',
      reason: 'dead-lettered: retry in 5s: resend: 503',
    });

    const listed = await json<{ data: { deliveryId: string; channel: string; reason: string }[] }>(
      await api('GET', '/v1/admin/dead-letters?channel=email&limit=1000'),
    );
    expect(listed.data.find((d) => d.deliveryId === id)).toMatchObject({ channel: 'email' });

    const replay = await api('POST', '/v1/admin/dead-letters/replay', { ids: [id] }, { env: captured.env });
    expect(replay.status).toBe(200);
    expect(await json(replay)).toEqual({ replayed: 1, ids: [id] });
    expect(captured.queues.email.ids()).toContain(id);
    const after = (await deliveries(accepted.id))[0];
    expect(after).toMatchObject({ status: 'queued', attempts: 0 });
    expect(after?.history.map((h) => h.status).slice(-3)).toEqual(['failed', 'created', 'queued']);

    // replayed once: a second replay finds nothing
    expect(
      await json(await api('POST', '/v1/admin/dead-letters/replay', { ids: [id] }, { env: captured.env })),
    ).toEqual({ replayed: 0, ids: [] });
  });

  it('replay needs ids or a channel', async () => {
    const res = await api('POST', '/v1/admin/dead-letters/replay', {});
    expect(res.status).toBe(422);
  });
});

describe('alerts', () => {
  it('a storm of the same alert is one digest message a minute', async () => {
    const captured = envWithCapturedQueues({
      ALERT_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/alerts',
    });
    const accepted = await send(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }, { email: 'b@example.com' }],
    });
    for (const d of accepted.deliveries) {
      await runConsumer(captured.env, 'herald-email-dlq', [{ v: 1, deliveryIds: [d.id], attempt: 8 }]);
    }
    const calls = fakeFetch(() => new Response('ok'));
    await cron(captured.env);
    const alertCalls = calls.filter((c) => c.url.startsWith('https://hooks.slack.com/services/T0/B0/alerts'));
    expect(alertCalls).toHaveLength(1);
    const text = (JSON.parse(String(alertCalls[0]?.init?.body)) as { text: string }).text;
    expect(text).toMatch(/email deliveries reached the dead-letter queue \(×\d+ since/);
    // The next minute's digest does not repeat what was already sent.
    await cron(captured.env);
    const later = calls.filter((c) => c.url.includes('/alerts')).slice(1);
    expect(later.map((c) => String(c.init?.body)).join('\n')).not.toContain('reached the dead-letter queue');
  });
});

describe('sweeper', () => {
  it('re-enqueues deliveries left created for over a minute, exactly once', async () => {
    const captured = envWithCapturedQueues();
    captured.queues.sms.fail = true;
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { phone: '+14155550123' });
    const accepted = await send(captured, {
      type: 'payment_reminder',
      recipients: [userId],
      channels: ['sms'],
      data: {},
    });
    const id = accepted.deliveries[0]?.id ?? '';
    expect(accepted.deliveries[0]?.status).toBe('created');
    captured.queues.sms.fail = false;

    await cron(captured.env);
    expect(captured.queues.sms.ids()).not.toContain(id); // not a minute old yet

    await testEnv.DB.prepare('UPDATE deliveries SET updated_at = updated_at - 120000 WHERE id = ?')
      .bind(id)
      .run();
    const later = Date.now() + 120_000;
    vi.useFakeTimers({ now: later, toFake: ['Date'] });
    try {
      await cron(captured.env, later);
      await cron(captured.env, later);
    } finally {
      vi.useRealTimers();
    }
    expect(captured.queues.sms.ids().filter((x) => x === id)).toHaveLength(1);
    expect((await deliveries(accepted.id))[0]?.history.at(-1)).toMatchObject({
      status: 'queued',
      reason: 're-enqueued by the sweeper',
    });
  });
});

describe('scheduled sends', () => {
  it('a send time beyond the queue delay limit hops until it is due, without counting as a retry', async () => {
    const captured = envWithCapturedQueues();
    const sendAt = new Date(Date.now() + 30 * 3600_000).toISOString();
    const accepted = await send(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }],
      sendAt,
    });
    expect(captured.queues.email.sent[0]?.delaySeconds).toBe(43_200);
    const body = captured.queues.email.sent[0]?.body;
    if (!body) throw new Error('nothing enqueued');
    const { result, messageIds } = await runConsumer(captured.env, 'herald-email', [body]);
    expect(result.explicitAcks).toEqual(messageIds);
    expect(captured.queues.email.sent[1]).toMatchObject({
      body: { deliveryIds: [accepted.deliveries[0]?.id], attempt: 0 },
    });
    expect(captured.queues.email.sent[1]?.delaySeconds).toBe(43_200);
    expect((await deliveries(accepted.id))[0]).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('politeness through the Recipient object', () => {
  async function sendSms(captured: CapturedEnv, userId: string, extra: Record<string, unknown> = {}) {
    const accepted = await send(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['sms'],
      data: { order_id: 'A1' },
      ...extra,
    });
    const body = captured.queues.sms.sent.at(-1)?.body;
    if (!body) throw new Error('nothing enqueued');
    const run = await runConsumer(captured.env, 'herald-sms', [body]);
    return { accepted, run, delivery: (await deliveries(accepted.id))[0] };
  }

  it('SMS: five an hour are sent, the sixth is deferred to when the window frees, a low one is dropped, a critical one is sent', async () => {
    const captured = envWithCapturedQueues();
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { phone: '+14155550123' });
    for (let i = 0; i < 5; i++) expect((await sendSms(captured, userId)).delivery?.status).toBe('sent');
    const sixth = await sendSms(captured, userId);
    expect(sixth.delivery?.status).toBe('deferred');
    expect(sixth.delivery?.reason).toMatch(/^sms rate limit reached; next slot at /);
    expect(sixth.run.result.explicitAcks).toEqual(sixth.run.messageIds);
    const waiting = captured.queues.sms.sent.at(-1);
    expect(waiting?.body.deliveryIds).toEqual([sixth.accepted.deliveries[0]?.id]);
    expect(waiting?.delaySeconds).toBeGreaterThan(3500);
    expect(waiting?.delaySeconds).toBeLessThanOrEqual(3600);
    expect((await sendSms(captured, userId, { priority: 'low' })).delivery?.status).toBe('rate_limited');
    expect((await sendSms(captured, userId, { priority: 'critical' })).delivery?.status).toBe('sent');
  });

  it('a type override replaces the channel default (payment_reminder: 3 SMS a day)', async () => {
    const captured = envWithCapturedQueues();
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { phone: '+14155550123' });
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      const accepted = await send(captured, {
        type: 'payment_reminder',
        recipients: [userId],
        channels: ['sms'],
        data: {},
      });
      const body = captured.queues.sms.sent.at(-1)?.body;
      if (!body) throw new Error('nothing enqueued');
      await runConsumer(captured.env, 'herald-sms', [body]);
      statuses.push((await deliveries(accepted.id))[0]?.status ?? '');
    }
    expect(statuses).toEqual(['sent', 'sent', 'sent', 'deferred']);
  });

  it('the same dedupe key for the same recipient and channel within the window is a duplicate', async () => {
    const captured = envWithCapturedQueues();
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { email: 'a@example.com' });
    const first = await send(captured, {
      type: 'security_alert',
      recipients: [userId],
      dedupeKey: 'login-42',
    });
    const second = await send(captured, {
      type: 'security_alert',
      recipients: [userId],
      dedupeKey: 'login-42',
    });
    for (const m of captured.queues.email.sent) await runConsumer(captured.env, 'herald-email', [m.body]);
    expect((await deliveries(first.id))[0]?.status).toBe('sent');
    expect((await deliveries(second.id))[0]).toMatchObject({ status: 'duplicate' });
    expect((await deliveries(second.id))[0]?.reason).toContain(first.deliveries[0]?.id);
  });
});
