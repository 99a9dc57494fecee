import { createExecutionContext, runDurableObjectAlarm, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { Novu } from '@novu/api';
import { HTTPClient } from '@novu/api/lib/http.js';
import { SubscriberResponseDto, ValidationErrorDto } from '@novu/api/models/errors';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import worker from '../../src/index';
import { ADMIN_KEY, api, json, newContact, testEnv, uniqueUser, until } from '../helpers/api';
import { type NotificationView, readDeliveries, readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues } from '../helpers/queues';

/*
 * Novu's own SDK (@novu/api, unmodified) against the Worker: its HTTP goes through the Worker's
 * fetch handler (SELF, the deployed entry point, with its real local queues and consumers), so
 * these calls are exactly what an application that swapped Novu's `serverURL` for Herald's sends.
 */

/** The SDK as an application builds it, its requests answered by the Worker. */
function novu(fetcher: (request: Request) => Promise<Response> = (request) => SELF.fetch(request)) {
  return new Novu({
    secretKey: ADMIN_KEY,
    serverURL: 'https://herald.test',
    // The SDK hands its fetcher a whole Request (src/lib/http.ts in @novu/api).
    httpClient: new HTTPClient({ fetcher: (request) => fetcher(request as Request) }),
    // The SDK's own retries (up to an hour on a 5xx) would only slow a failing test down.
    retryConfig: { strategy: 'none' },
  });
}

/** The SDK's requests answered by the Worker with this env (captured queues: the test drives the consumer). */
function withEnv(env: Env) {
  return novu(async (request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, env, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  });
}

const notification = async (id: string) =>
  json<NotificationView>(await api('GET', `/v1/notifications/${encodeURIComponent(id)}`));

const reminder = { amount: '42.00', currency: 'EUR', due_date: '2026-12-01' };

describe('Novu SDK against Herald', () => {
  it('creates a subscriber, triggers a workflow to it, and the email goes out once', async () => {
    const sdk = novu();
    const subscriberId = uniqueUser('novu_sub');
    const created = await sdk.subscribers.create({
      subscriberId,
      email: 'ada.novu@example.com',
      phone: '+14155550123',
      firstName: 'Ada',
      locale: 'en_GB',
      timezone: 'Europe/London',
    });
    expect(created.result).toMatchObject({
      subscriberId,
      email: 'ada.novu@example.com',
      phone: '+14155550123',
      locale: 'en-GB',
      timezone: 'Europe/London',
      deleted: false,
    });
    expect(created.result.firstName).toBeUndefined(); // not kept by Herald
    const contact = await json(await api('GET', `/v1/contacts/${subscriberId}`));
    expect(contact).toMatchObject({ email: 'ada.novu@example.com', locale: 'en-GB' });

    const triggered = await sdk.trigger({
      workflowId: 'payment_reminder',
      to: subscriberId,
      payload: reminder,
      overrides: { email: { from: 'ignored@example.com' } },
    });
    expect(triggered.result).toMatchObject({ acknowledged: true, status: 'processed' });
    const transactionId = triggered.result.transactionId ?? '';
    expect(transactionId).not.toBe('');

    const sent = await until(
      () => notification(transactionId),
      (n) => n.deliveries.length > 0 && n.deliveries.every((d) => d.status === 'sent'),
    );
    expect(sent).toMatchObject({ type: 'payment_reminder', source: 'novu', data: reminder });
    expect(sent.deliveries.map((d) => d.channel).sort()).toEqual(['email', 'sms']);
    const emails = (await readOutbox({ userId: subscriberId })).filter((e) => e.channel === 'email');
    expect(emails.map((e) => e.message.subject)).toEqual(['Payment reminder: 42.00 EUR due 2026-12-01']);
  });

  it('a repeated transactionId answers the same and creates no second delivery', async () => {
    const sdk = novu();
    const userId = await newContact({ email: 'repeat.novu@example.com' });
    const transactionId = `novu-repeat-${userId}`;
    const body = {
      workflowId: 'payment_reminder',
      to: { subscriberId: userId },
      payload: reminder,
      transactionId,
    };
    // Two calls: the SDK sends a fresh idempotency-key with each, so only the transactionId ties them.
    const first = await sdk.trigger(body);
    const again = await sdk.trigger(body);
    expect(first.result).toEqual({ acknowledged: true, status: 'processed', transactionId });
    expect(again.result).toEqual(first.result);
    expect(again.headers['idempotency-replay']).toBeUndefined();

    const sent = await until(
      () => notification(transactionId),
      (n) => n.deliveries.every((d) => d.status === 'sent'),
    );
    expect(sent.deliveries).toHaveLength(1);
    const listed = await json<{ data: unknown[] }>(await api('GET', `/v1/notifications?userId=${userId}`));
    expect(listed.data).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a second send would land by now
    expect(await readOutbox({ userId })).toHaveLength(1);
  });

  it('bulk-triggers: one answer per event, an unknown workflow as an error entry', async () => {
    const [a, b] = [
      await newContact({ email: 'bulk.a@example.com' }),
      await newContact({ phone: '+14155550199' }),
    ];
    const answer = await novu().triggerBulk({
      events: [
        { workflowId: 'payment_reminder', to: [a], payload: reminder, transactionId: `bulk-a-${a}` },
        { workflowId: 'no_such_workflow', to: [a] },
        { workflowId: 'order_shipped', to: { subscriberId: b }, payload: { order_id: 'A-1' } },
      ],
    });
    expect(answer.result).toEqual([
      { acknowledged: true, status: 'processed', transactionId: `bulk-a-${a}` },
      { acknowledged: true, status: 'error', error: ['workflow_not_found'] },
      { acknowledged: true, status: 'processed', transactionId: expect.stringMatching(/\S/) },
    ]);
    expect((await notification(`bulk-a-${a}`)).deliveries.map((d) => d.userId)).toEqual([a]);
    const third = await notification(answer.result[2]?.transactionId ?? '');
    expect(third).toMatchObject({ type: 'order_shipped', data: { order_id: 'A-1' } });
    expect(third.deliveries.map((d) => [d.userId, d.channel])).toEqual([[b, 'sms']]);
  });

  it('surfaces an unknown workflow and invalid input as its own error classes', async () => {
    const sdk = novu();
    const unknown = await sdk.trigger({ workflowId: 'not-a-workflow', to: 'user_x' }).catch((e) => e);
    expect(unknown).toBeInstanceOf(ValidationErrorDto);
    expect(unknown).toMatchObject({ statusCode: 422, message: 'workflow_not_found' });
    expect(Object.keys((unknown as ValidationErrorDto).errors)).toEqual(['name']);

    const invalid = await sdk
      .trigger({ workflowId: 'payment_reminder', to: [{ subscriberId: 'u_1', email: 'not-an-email' }] })
      .catch((e) => e);
    expect(invalid).toBeInstanceOf(ValidationErrorDto);
    expect((invalid as ValidationErrorDto).errors['to[0].email']?.messages).toEqual([
      'must be a valid email address',
    ]);

    const subscriberId = await newContact({ email: 'exists.novu@example.com' });
    const exists = await sdk.subscribers
      .create({ subscriberId, email: 'other@example.com' }, true)
      .catch((e) => e);
    expect(exists).toBeInstanceOf(SubscriberResponseDto);
    expect(exists).toMatchObject({ statusCode: 409, subscriberId, email: 'exists.novu@example.com' });
  });

  it('creates a topic, subscribes to it, and triggers to it: the actor and the excluded get nothing', async () => {
    const sdk = novu();
    const topicKey = `novu_topic_${Date.now().toString(36)}`;
    const created = await sdk.topics.create({ key: topicKey, name: 'Project 42 followers' });
    expect(created.result).toMatchObject({ id: topicKey, key: topicKey, name: 'Project 42 followers' });
    const [actor, follower, muted] = [
      await newContact({ email: 'actor.novu@example.com' }),
      await newContact({ email: 'follower.novu@example.com' }),
      await newContact({ email: 'muted.novu@example.com' }),
    ];
    const subscribed = await sdk.topics.subscriptions.create(
      { subscriberIds: [actor, follower, muted] },
      topicKey,
    );
    expect(subscribed.result.meta).toEqual({ totalCount: 3, successful: 3, failed: 0 });
    expect(subscribed.result.data.map((s) => s.subscriber?.subscriberId)).toEqual([actor, follower, muted]);

    const triggered = await sdk.trigger({
      workflowId: 'payment_reminder',
      to: [{ type: 'Topic', topicKey, exclude: [muted] }],
      actor: { subscriberId: actor, firstName: 'Ada' },
      payload: reminder,
    });
    expect(triggered.result.status).toBe('processed');
    const expanded = await until(
      () => notification(triggered.result.transactionId ?? ''),
      (n) => n.deliveries.some((d) => d.userId === follower && d.status === 'sent'),
    );
    expect(expanded.deliveries.map((d) => [d.userId, d.channel, d.status])).toEqual([
      [follower, 'email', 'sent'],
    ]);
  });

  it('cancels a trigger whose delivery waits in a digest: canceled, and never sent', async () => {
    // Novu cancels pending digest and delay steps by transactionId; Herald's digest is a type's config.
    const type = `novu_digest_${Date.now().toString(36)}`;
    const parts = {
      subject: '{% if digest %}{{ digest.count }} new comments{% else %}A new comment{% endif %}',
      text: '{% if digest %}{% for item in digest.items %}{{ item.data.body }};{% endfor %}{% else %}{{ body }};{% endif %}',
    };
    expect((await api('PUT', `/v1/templates/${type}/email`, { parts })).status).toBe(200);
    expect(
      (await api('PUT', `/v1/templates/${type}/config`, { digest: { window: '1s', channels: ['email'] } }))
        .status,
    ).toBe(200);
    const userId = await newContact({ email: 'digest.novu@example.com' });
    const captured = envWithCapturedQueues();
    const sdk = withEnv(captured.env);
    const [withdrawn, kept] = [`withdrawn-${userId}`, `kept-${userId}`];
    for (const [transactionId, body] of [
      [withdrawn, 'withdrawn'],
      [kept, 'kept'],
    ])
      await sdk.trigger({ workflowId: type, to: userId, payload: { body }, transactionId });
    await drainQueues(captured);
    expect((await readDeliveries(withdrawn))[0]?.status).toBe('digested');

    expect((await sdk.cancel(withdrawn)).result).toBe(true);
    expect((await sdk.cancel(withdrawn)).result).toBe(false); // nothing left to cancel
    expect((await sdk.cancel(`never-${userId}`)).result).toBe(false);
    expect((await readDeliveries(withdrawn))[0]?.status).toBe('canceled');

    // The window closes: the digest goes, without the canceled one.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await runDurableObjectAlarm(testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(`user:${userId}`)));
    const emails = await until(
      async () => (await readOutbox({ userId })).filter((e) => e.channel === 'email'),
      (found) => found.length > 0,
    );
    expect(emails.map((e) => e.message.text?.split('\n\nUnsubscribe')[0])).toEqual(['kept;']);
    expect((await readDeliveries(withdrawn))[0]?.status).toBe('canceled');
  });
});
