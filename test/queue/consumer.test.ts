import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, FCM_TOKEN, json, newContact, SLACK_URL } from '../helpers/api';
import { readDeliveries, readDelivery } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import {
  consumeEnqueued,
  deadLetter,
  enqueued,
  envWithCapturedQueues,
  resendSendgridEnv,
  runConsumer,
  sendNotification,
} from '../helpers/queues';
import { countAll, dbOfDelivery } from '../helpers/shards';
import { rsaPrivateKeyPem } from '../providers/push/helpers';

afterEach(() => vi.restoreAllMocks());

/** A security alert to one inline email address. */
const ALERT = { type: 'security_alert', recipients: [{ email: 'a@example.com' }] };

/** The outbox rows of a delivery: in its shard, and none anywhere else. */
async function outboxFor(deliveryId: string): Promise<number> {
  const query = 'SELECT count(*) AS n FROM outbox WHERE delivery_id = ?';
  const here = await dbOfDelivery(deliveryId).prepare(query).bind(deliveryId).first<{ n: number }>();
  expect(await countAll(query, deliveryId)).toBe(here?.n ?? 0);
  return here?.n ?? 0;
}

describe('consumer: ack decisions', () => {
  it('sends through the sandbox, records sent and the outbox, and acks', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }, { email: 'b@example.com' }],
    });
    expect(enqueued(captured, 'email').deliveryIds).toEqual(accepted.deliveries.map((d) => d.id));
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(result.explicitAcks).toEqual(messageIds);
    expect(result.retryMessages).toEqual([]);
    const d = await readDelivery(accepted.id);
    expect(d).toMatchObject({ status: 'sent', provider: 'sandbox', attempts: 1 });
    expect(d.history.map((h) => h.status)).toEqual(['created', 'queued', 'sent']);
    expect(await outboxFor(d.id)).toBe(1);
  });

  it('a delivery already sent is acked without sending again', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, ALERT);
    await consumeEnqueued(captured, 'email');
    const { result, messageIds } = await consumeEnqueued(captured, 'email', { attempts: 2 });
    expect(result.explicitAcks).toEqual(messageIds);
    expect(await outboxFor(accepted.deliveries[0]?.id ?? '')).toBe(1);
  });

  it('a message no version of Herald can read is acked and dropped', async () => {
    const captured = envWithCapturedQueues();
    const { result, messageIds } = await runConsumer(captured.env, 'herald-email', [
      { hello: 'world' } as never,
    ]);
    expect(result.explicitAcks).toEqual(messageIds);
  });

  it('an id that no longer exists is acked', async () => {
    const captured = envWithCapturedQueues();
    const { result, messageIds } = await runConsumer(captured.env, 'herald-sms', [
      { v: 1, deliveryIds: ['dlv_gone'], attempt: 0 },
    ]);
    expect(result.explicitAcks).toEqual(messageIds);
  });
});

describe('consumer: retry decisions and failover', () => {
  it('Resend answering 503 fails over to SendGrid within the attempt, and the delivery says so', async () => {
    const captured = resendSendgridEnv();
    const accepted = await sendNotification(captured, ALERT);
    const calls = fakeFetch((url) =>
      url.startsWith('https://api.resend.com')
        ? new Response('{"name":"internal_server_error","message":"down"}', { status: 503 })
        : new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-msg-1' } }),
    );
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(calls.map((c) => new URL(c.url).host)).toEqual(['api.resend.com', 'api.sendgrid.com']);
    expect(result.explicitAcks).toEqual(messageIds);
    const d = await readDelivery(accepted.id);
    expect(d).toMatchObject({ status: 'sent', provider: 'sendgrid', providerMessageId: 'sg-msg-1' });
  });

  it('with every provider down the message is retried with backoff and the reason is kept', async () => {
    const captured = resendSendgridEnv();
    const accepted = await sendNotification(captured, ALERT);
    fakeFetch(() => new Response('unavailable', { status: 503 }));
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(result.explicitAcks).toEqual([]);
    // The harness records that a message was retried, not its delay: the delay is in the history.
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(messageIds);
    const d = await readDelivery(accepted.id);
    expect(d.status).toBe('queued');
    expect(d.attempts).toBe(1);
    expect(d.reason).toMatch(/^retry in [4-6]s: resend: .*503.*; sendgrid: .*503/);
  });

  it('Retry-After is honoured when longer than the schedule', async () => {
    const captured = resendSendgridEnv({ EMAIL_PROVIDERS: 'resend' });
    const accepted = await sendNotification(captured, ALERT);
    fakeFetch(
      () =>
        new Response('{"name":"rate_limit_exceeded"}', { status: 429, headers: { 'Retry-After': '120' } }),
    );
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(result.retryMessages).toEqual([{ msgId: messageIds[0] }]);
    expect((await readDelivery(accepted.id)).reason).toMatch(/^retry in 120s: /);
  });

  it('a partial failure re-enqueues only the failed deliveries and acks the message', async () => {
    const captured = envWithCapturedQueues({ CHAT_PROVIDERS: 'slack,discord' });
    const userA = await newContact({ externalChannels: [{ platform: 'slack', url: SLACK_URL }] });
    const userB = await newContact({
      externalChannels: [{ platform: 'discord', url: 'https://discord.com/api/webhooks/123/abc' }],
    });
    const accepted = await sendNotification(captured, {
      type: 'payment_reminder',
      recipients: [userA, userB],
      channels: ['chat'],
      data: {},
    });
    fakeFetch((url) =>
      url.startsWith('https://hooks.slack.com')
        ? new Response('rollup_error', { status: 500 })
        : new Response(null, { status: 204 }),
    );
    expect(enqueued(captured, 'chat').deliveryIds).toEqual(accepted.deliveries.map((d) => d.id));
    const { result, messageIds } = await consumeEnqueued(captured, 'chat');
    expect(result.explicitAcks).toEqual(messageIds);
    const requeued = captured.queues.chat.sent.slice(1);
    expect(requeued).toHaveLength(1);
    expect(requeued[0]?.body).toMatchObject({ deliveryIds: [accepted.deliveries[0]?.id], attempt: 1 });
    expect(requeued[0]?.delaySeconds).toBeGreaterThan(0);
    expect((await readDelivery(accepted.id, 1)).status).toBe('sent');
  });

  it('when attempts are spent the delivery fails and goes to the dead-letter queue', async () => {
    const captured = resendSendgridEnv({ EMAIL_PROVIDERS: 'resend' });
    const accepted = await sendNotification(captured, ALERT);
    const id = accepted.deliveries[0]?.id ?? '';
    await dbOfDelivery(id).prepare('UPDATE deliveries SET attempts = 7 WHERE id = ?').bind(id).run();
    fakeFetch(() => new Response('down', { status: 502 }));
    const { result, messageIds } = await consumeEnqueued(captured, 'email', { attempts: 8 });
    expect(result.explicitAcks).toEqual(messageIds);
    expect(captured.dlqs.email.ids()).toEqual([id]);
    const d = await readDelivery(accepted.id);
    expect(d.status).toBe('failed');
    expect(d.reason).toMatch(/^attempts exhausted \(8\)/);
  });

  it('a listed provider without credentials retries the batch instead of skipping it', async () => {
    const captured = envWithCapturedQueues({ EMAIL_PROVIDERS: 'postmark' });
    await sendNotification(captured, ALERT);
    const calls = fakeFetch(() => new Response('{}', { status: 200 }));
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(calls).toHaveLength(0);
    expect(result.retryMessages).toEqual([{ msgId: messageIds[0] }]);
    expect(result.explicitAcks).toEqual([]);
  });
});

describe('consumer: permanent answers clean the contact', () => {
  it('FCM UNREGISTERED fails the delivery and removes that token', async () => {
    const privateKey = await rsaPrivateKeyPem();
    const captured = envWithCapturedQueues({
      PUSH_PROVIDERS: 'fcm',
      FCM_SERVICE_ACCOUNT: JSON.stringify({
        type: 'service_account',
        project_id: 'herald-test',
        client_email: 'herald@herald-test.iam.gserviceaccount.com',
        private_key: privateKey,
        token_uri: 'https://oauth2.googleapis.com/token',
      }),
    });
    const otherToken = `${FCM_TOKEN}other`;
    const userId = await newContact({
      deviceTokens: [
        { deviceToken: FCM_TOKEN, platform: 'fcm' },
        { deviceToken: otherToken, platform: 'fcm' },
      ],
    });
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['push'],
      data: { order_id: 'A1' },
    });
    fakeFetch((url, init) => {
      if (url.startsWith('https://oauth2.googleapis.com')) {
        return Response.json({ access_token: 'ya29.test', expires_in: 3599, token_type: 'Bearer' });
      }
      const sent = JSON.parse(String(init?.body)) as { message: { token: string } };
      if (sent.message.token === FCM_TOKEN) {
        return Response.json(
          {
            error: {
              code: 404,
              message: 'Requested entity was not found.',
              status: 'NOT_FOUND',
              details: [
                { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' },
              ],
            },
          },
          { status: 404 },
        );
      }
      return Response.json({ name: 'projects/herald-test/messages/1' });
    });
    const { result, messageIds } = await consumeEnqueued(captured, 'push');
    expect(result.explicitAcks).toEqual(messageIds);
    expect((await readDeliveries(accepted.id)).map((d) => d.status)).toEqual(['failed', 'sent']);
    const contact = await json<{ deviceTokens: { deviceToken: string }[] }>(
      await api('GET', `/v1/contacts/${userId}`),
    );
    expect(contact.deviceTokens.map((t) => t.deviceToken)).toEqual([otherToken]);
  });

  it('Slack no_service disables that chat channel', async () => {
    const captured = envWithCapturedQueues({ CHAT_PROVIDERS: 'slack' });
    const userId = await newContact({ externalChannels: [{ platform: 'slack', url: SLACK_URL }] });
    await sendNotification(captured, {
      type: 'payment_reminder',
      recipients: [userId],
      channels: ['chat'],
      data: {},
    });
    fakeFetch(() => new Response('no_service', { status: 404 }));
    await consumeEnqueued(captured, 'chat');
    const contact = await json<{ externalChannels: { status: boolean }[] }>(
      await api('GET', `/v1/contacts/${userId}`),
    );
    expect(contact.externalChannels).toEqual([{ platform: 'slack', url: SLACK_URL, status: false }]);
  });

  it('Twilio 21610 (STOP) opts the user out of SMS, and later SMS are suppressed at ingest', async () => {
    const captured = envWithCapturedQueues({
      SMS_PROVIDERS: 'twilio',
      TWILIO_ACCOUNT_SID: 'AC00000000000000000000000000000000',
      TWILIO_AUTH_TOKEN: 'test-token',
      TWILIO_FROM: '+15005550006',
    });
    const userId = await newContact({ phone: '+14155550123' });
    const reminder = { type: 'payment_reminder', recipients: [userId], channels: ['sms'], data: {} };
    await sendNotification(captured, reminder);
    fakeFetch(() =>
      Response.json(
        {
          code: 21610,
          message: 'Attempt to send to unsubscribed recipient',
          more_info: 'https://www.twilio.com/docs/errors/21610',
          status: 400,
        },
        { status: 400 },
      ),
    );
    await consumeEnqueued(captured, 'sms');
    const contact = await json<{ smsOptedOut: boolean }>(await api('GET', `/v1/contacts/${userId}`));
    expect(contact.smsOptedOut).toBe(true);
    const later = await sendNotification(captured, reminder);
    expect(later.deliveries[0]).toMatchObject({ status: 'suppressed' });
  });
});

describe('dead-letter consumer', () => {
  it('marks what reaches the DLQ failed with the last error', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, ALERT);
    const id = accepted.deliveries[0]?.id ?? '';
    await dbOfDelivery(id)
      .prepare("UPDATE deliveries SET reason = 'retry in 5s: resend: 503' WHERE id = ?")
      .bind(id)
      .run();
    const { result, messageIds } = await deadLetter(captured.env, 'email', [id], 3);
    expect(result.explicitAcks).toEqual(messageIds);
    const d = await readDelivery(accepted.id);
    expect(d.status).toBe('failed');
    expect(d.reason).toBe('dead-lettered: retry in 5s: resend: 503');
  });
});
