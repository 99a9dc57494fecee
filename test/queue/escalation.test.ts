import { evictAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { createServices } from '../../src/services/container';
import { recordEngagement } from '../../src/services/tracking/opens-and-clicks';
import { api, FCM_TOKEN, json, newContact, testEnv, uniqueUser } from '../helpers/api';
import { readDeliveries } from '../helpers/deliveries';
import {
  type CapturedEnv,
  consumeEnqueued,
  enqueued,
  envWithCapturedQueues,
  sendNotification,
} from '../helpers/queues';
import { dbOfDelivery } from '../helpers/shards';

const POSTMARK = { user: 'herald', password: 'postmark-basic-password' };
const _MINUTE = 60_000;

/** A type made for these tests: its templates, and an escalation over `steps`. */
async function escalatingType(name: string, steps: Record<string, unknown>[]): Promise<string> {
  const type = `esc_${name}_${Date.now().toString(36)}`;
  const parts: Record<string, Record<string, string>> = {
    email: { subject: 'Action needed', text: 'Please act: {{ what }}' },
    sms: { text: 'Please act: {{ what }}' },
    push: { title: 'Action needed', body: '{{ what }}' },
    inapp: { title: 'Action needed', body: '{{ what }}' },
  };
  for (const channel of new Set(steps.map((s) => String(s.channel)))) {
    const res = await api('PUT', `/v1/templates/${type}/${channel}`, { parts: parts[channel] });
    expect(res.status, await res.clone().text()).toBe(200);
  }
  const config = await api('PUT', `/v1/templates/${type}/config`, { escalation: steps });
  expect(config.status, await config.clone().text()).toBe(200);
  return type;
}

async function send(captured: CapturedEnv, type: string, userId: string) {
  return sendNotification(captured, { type, recipients: [userId], data: { what: 'sign the contract' } });
}

/** The escalation timers the user's Recipient object holds. */
async function timersOf(userId: string) {
  return runInDurableObject(
    testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(`user:${userId}`)),
    (_o, state) =>
      state.storage.sql
        .exec<{ delivery_id: string; channel: string; due_at: number }>('SELECT * FROM step_timers')
        .toArray()
        .map((r) => ({ deliveryId: r.delivery_id, channel: r.channel, dueAtMs: r.due_at })),
  );
}

const statusesOf = async (id: string) => (await readDeliveries(id)).map((d) => [d.channel, d.status]);

let emailThenSms: string;

beforeAll(async () => {
  emailThenSms = await escalatingType('email_sms', [
    { channel: 'email' },
    { channel: 'sms', after: '15m', unless: ['delivered', 'opened', 'clicked'] },
  ]);
});

describe('escalation', () => {
  it('the first step goes at once; a later one is scheduled with its reason, and goes when due', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'esc@example.com', phone: '+14155550123' });
    const accepted = await send(captured, emailThenSms, userId);
    expect(accepted.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['email', 'queued'],
      ['sms', 'scheduled'],
    ]);
    const sms = (await readDeliveries(accepted.id))[1];
    expect(sms?.reason).toMatch(
      /^escalation: sms at .+ unless an earlier step is delivered, opened, clicked$/,
    );
    // Its timer is in the recipient's object, not on the queue.
    expect(captured.queues.sms.sent).toEqual([]);
    expect(await timersOf(userId)).toEqual([
      { deliveryId: accepted.deliveries[1]?.id, channel: 'sms', dueAtMs: expect.any(Number) },
    ]);
  });

  it("a step's timer survives eviction, and its alarm sends it when due", async () => {
    const quick = await escalatingType('quick', [{ channel: 'email' }, { channel: 'sms', after: '1s' }]);
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'esc.quick@example.com', phone: '+14155550129' });
    const accepted = await send(captured, quick, userId);
    await evictAllDurableObjects();
    await new Promise((r) => setTimeout(r, 1100));
    await runDurableObjectAlarm(testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(`user:${userId}`)));
    // The real queue delivers it to the consumer, which sends it.
    const deadline = Date.now() + 10_000;
    while ((await readDeliveries(accepted.id))[1]?.status !== 'sent' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await readDeliveries(accepted.id))[1]?.status).toBe('sent');
    expect(await timersOf(userId)).toEqual([]);
  });

  it('skipped at once by an open of the email, and by a click (also once the sweeper queued it)', async () => {
    for (const status of ['opened', 'clicked'] as const) {
      const captured = envWithCapturedQueues();
      const userId = await newContact({ email: 'esc.open@example.com', phone: '+14155550124' });
      const accepted = await send(captured, emailThenSms, userId);
      await consumeEnqueued(captured, 'email');
      if (status === 'clicked') {
        // As if its enqueue at ingest had failed and the sweeper had queued it since.
        await dbOfDelivery(accepted.deliveries[1]?.id ?? '')
          .prepare("UPDATE deliveries SET status = 'queued' WHERE id = ?")
          .bind(accepted.deliveries[1]?.id)
          .run();
      }
      const email = accepted.deliveries[0]?.id ?? '';
      await recordEngagement(
        createServices(testEnv),
        { token: `t-${email}-${status}`, deliveryId: email },
        status,
      );
      expect(await statusesOf(accepted.id)).toEqual([
        ['email', status],
        ['sms', 'skipped'],
      ]);
      expect((await readDeliveries(accepted.id))[1]?.reason).toBe(
        `escalation: skipped, an earlier step was ${status}`,
      );
    }
  });

  it("skipped by the provider's delivered callback", async () => {
    const env = {
      ...envWithCapturedQueues().env,
      POSTMARK_WEBHOOK_USER: POSTMARK.user,
      POSTMARK_WEBHOOK_PASSWORD: POSTMARK.password,
    } as Env;
    const captured = { ...envWithCapturedQueues(), env } as CapturedEnv;
    Object.assign(env, { QUEUE_EMAIL: captured.queues.email, QUEUE_SMS: captured.queues.sms });
    const userId = await newContact({ email: 'esc.cb@example.com', phone: '+14155550125' });
    const accepted = await send(captured, emailThenSms, userId);
    await consumeEnqueued(captured, 'email');
    const res = await api(
      'POST',
      '/v1/webhooks/postmark',
      JSON.stringify({
        RecordType: 'Delivery',
        MessageID: 'pm-esc',
        Metadata: { delivery_id: accepted.deliveries[0]?.id },
      }),
      {
        key: null,
        env,
        headers: {
          'Content-Type': 'application/json',
          Authorization: `Basic ${btoa(`${POSTMARK.user}:${POSTMARK.password}`)}`,
        },
      },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await statusesOf(accepted.id)).toEqual([
      ['email', 'delivered'],
      ['sms', 'skipped'],
    ]);
  });

  it('skipped by a read in the inbox', async () => {
    const type = await escalatingType('inapp_email', [
      { channel: 'inapp' },
      { channel: 'email', after: '1h', unless: ['opened'] },
    ]);
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'esc.inbox@example.com' });
    const accepted = await send(captured, type, userId);
    await consumeEnqueued(captured, 'inapp');
    // Delivered to the inbox is not enough here (`unless` names only opened).
    expect(await statusesOf(accepted.id)).toEqual([
      ['inapp', 'delivered'],
      ['email', 'scheduled'],
    ]);
    const { token } = await json<{ token: string }>(await api('POST', '/v1/inbox/tokens', { userId }));
    const feed = await json<{ items: { id: string }[] }>(
      await api('GET', '/v1/inbox/feed', undefined, { key: token }),
    );
    expect(
      (await api('POST', `/v1/inbox/items/${feed.items[0]?.id}/read`, undefined, { key: token })).status,
    ).toBe(200);
    expect(await statusesOf(accepted.id)).toEqual([
      ['inapp', 'opened'],
      ['email', 'skipped'],
    ]);
  });

  it('a failed push brings the SMS forward; no address for the push brings it forward at once', async () => {
    const type = await escalatingType('push_sms', [{ channel: 'push' }, { channel: 'sms', after: '15m' }]);
    const captured = envWithCapturedQueues({ SANDBOX_PERMANENT_RATE: '1' });
    const userId = await newContact({
      phone: '+14155550126',
      deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
    });
    const accepted = await send(captured, type, userId);
    expect(accepted.deliveries.map((d) => d.status)).toEqual(['queued', 'scheduled']);
    await consumeEnqueued(captured, 'push');
    const [push, sms] = await readDeliveries(accepted.id);
    expect(push?.status).toBe('failed');
    expect(sms).toMatchObject({
      status: 'queued',
      reason: 'escalation: brought forward, an earlier step failed',
    });
    // Its new message has no delay, and it goes now.
    const forward = captured.queues.sms.sent.at(-1);
    expect(forward?.delaySeconds ?? 0).toBe(0);
    expect(enqueued(captured, 'sms', -1).deliveryIds).toEqual([sms?.id]);
    await consumeEnqueued({ ...captured, env: envWithCapturedQueues().env }, 'sms', { index: -1 });

    const noToken = await newContact({ phone: '+14155550127' });
    const direct = await send(envWithCapturedQueues(), type, noToken);
    expect(direct.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['push', 'skipped'],
      ['sms', 'queued'],
    ]);
  });

  it('a scheduled step is canceled with its notification', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'esc.cancel@example.com', phone: '+14155550128' });
    const accepted = await send(captured, emailThenSms, userId);
    const body = await json<{ canceled: string[] }>(await api('DELETE', `/v1/notifications/${accepted.id}`));
    expect(body.canceled).toEqual(accepted.deliveries.map((d) => d.id));
  });

  it('an escalation is refused unless every later step has after, and the first none', async () => {
    const type = `esc_bad_${uniqueUser('t')}`;
    await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'x' } });
    for (const escalation of [
      [
        { channel: 'sms', after: '5m' },
        { channel: 'email', after: '5m' },
      ],
      [{ channel: 'sms' }, { channel: 'email' }],
      [{ channel: 'sms' }, { channel: 'email', after: '5 minutes' }],
      [{ channel: 'sms' }],
    ]) {
      const res = await api('PUT', `/v1/templates/${type}/config`, { escalation });
      expect(res.status, JSON.stringify(escalation)).toBe(422);
    }
  });
});
