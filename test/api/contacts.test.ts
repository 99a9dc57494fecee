import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Env } from '../../src/config/env';
import { toBase64Url } from '../../src/lib/encoding';
import { APNS_TOKEN, api, FCM_TOKEN, json, SLACK_URL, testEnv, uniqueUser } from '../helpers/api';
import { readDeliveries } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import { consumeEnqueued, envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { countAll } from '../helpers/shards';

afterEach(() => vi.restoreAllMocks());

const P256DH = `B${'A'.repeat(86)}`;
const AUTH = 'A'.repeat(22);
const webpushToken = (endpoint = 'https://fcm.googleapis.com/fcm/send/abc') =>
  JSON.stringify({ endpoint, keys: { p256dh: P256DH, auth: AUTH } });

interface ErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

/** Contacts in every shard. */
async function contactCount(): Promise<number> {
  return countAll('SELECT count(*) AS n FROM contacts');
}

describe('contacts: happy paths', () => {
  it('PUT creates and GET reads a contact with every address kind', async () => {
    const userId = uniqueUser();
    const body = {
      email: 'ada@example.com',
      phone: '+14155550123',
      deviceTokens: [
        { deviceToken: APNS_TOKEN, platform: 'apns' },
        { deviceToken: FCM_TOKEN, platform: 'fcm' },
        { deviceToken: webpushToken(), platform: 'webpush' },
      ],
      externalChannels: [
        { platform: 'slack', url: SLACK_URL },
        { platform: 'telegram', chatId: '123456789' },
        {
          platform: 'webhook',
          url: 'https://example.com/hooks/herald',
          secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        },
      ],
      locale: 'fr-CA',
      timezone: 'America/Toronto',
    };
    const put = await api('PUT', `/v1/contacts/${userId}`, body);
    expect(put.status).toBe(200);
    const got = await json(await api('GET', `/v1/contacts/${userId}`));
    expect(got).toMatchObject({
      userId,
      email: 'ada@example.com',
      phone: '+14155550123',
      locale: 'fr-CA',
      timezone: 'America/Toronto',
      smsOptedOut: false,
    });
    expect(got.deviceTokens).toHaveLength(3);
    expect(got.externalChannels).toEqual([
      { platform: 'slack', url: SLACK_URL, status: true },
      { platform: 'telegram', chatId: '123456789', status: true },
      expect.objectContaining({ platform: 'webhook', status: true }),
    ]);
  });

  it('PUT replaces: absent fields are cleared', async () => {
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { email: 'a@example.com', phone: '+14155550123' });
    await api('PUT', `/v1/contacts/${userId}`, { email: 'b@example.com' });
    const got = await json(await api('GET', `/v1/contacts/${userId}`));
    expect(got).toMatchObject({ email: 'b@example.com', phone: null });
  });

  it('PATCH changes only the given fields, null clears one', async () => {
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, {
      email: 'a@example.com',
      phone: '+14155550123',
      locale: 'en',
    });
    const res = await api('PATCH', `/v1/contacts/${userId}`, { phone: null, timezone: 'Europe/Paris' });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({
      email: 'a@example.com',
      phone: null,
      locale: 'en',
      timezone: 'Europe/Paris',
    });
  });

  it('PATCH of an unknown contact is 404', async () => {
    const res = await api('PATCH', `/v1/contacts/${uniqueUser()}`, { email: 'a@example.com' });
    expect(res.status).toBe(404);
    expect((await json<ErrorBody>(res)).error.code).toBe('not_found');
  });

  it('device tokens: add (idempotent) and remove, web push tokens URL-encoded', async () => {
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { email: 'a@example.com' });
    const token = { deviceToken: APNS_TOKEN, platform: 'apns' };
    expect((await api('POST', `/v1/contacts/${userId}/device-tokens`, token)).status).toBe(200);
    const twice = await json(await api('POST', `/v1/contacts/${userId}/device-tokens`, token));
    expect(twice.deviceTokens).toHaveLength(1);
    const wp = { deviceToken: webpushToken(), platform: 'webpush' };
    await api('POST', `/v1/contacts/${userId}/device-tokens`, wp);
    const removed = await api(
      'DELETE',
      `/v1/contacts/${userId}/device-tokens/${encodeURIComponent(wp.deviceToken)}`,
    );
    expect(removed.status).toBe(200);
    expect((await json(removed)).deviceTokens).toEqual([token]);
    expect(
      (await api('DELETE', `/v1/contacts/${userId}/device-tokens/${APNS_TOKEN.replace('a', 'b')}`)).status,
    ).toBe(404);
  });

  it('DELETE removes the contact', async () => {
    const userId = uniqueUser();
    await api('PUT', `/v1/contacts/${userId}`, { email: 'a@example.com' });
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    expect((await api('GET', `/v1/contacts/${userId}`)).status).toBe(404);
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(404);
  });

  it('loopback URLs are accepted only in development', async () => {
    const userId = uniqueUser();
    const body = { externalChannels: [{ platform: 'slack', url: 'http://127.0.0.1:9999/slack' }] };
    const prod = await api('PUT', `/v1/contacts/${userId}`, body);
    expect(prod.status).toBe(422);
    expect((await json<ErrorBody>(prod)).error.message).toContain('externalChannels[0].url');
    const dev = await api('PUT', `/v1/contacts/${userId}`, body, {
      env: { ...testEnv, ENVIRONMENT: 'development' },
    });
    expect(dev.status).toBe(200);
  });
});

describe('contacts: every validation rule names the field and writes nothing', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['bad email', { email: 'not-an-email' }, 'email'],
    ['email without domain dot', { email: 'a@b' }, 'email'],
    ['phone without plus', { phone: '14155550123' }, 'phone'],
    ['phone with letters', { phone: '+1415555ABCD' }, 'phone'],
    ['phone too long', { phone: '+1234567890123456' }, 'phone'],
    ['phone too short', { phone: '+1234567' }, 'phone'],
    [
      'apns token too short',
      { deviceTokens: [{ deviceToken: 'abc123', platform: 'apns' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'apns token not hex',
      { deviceTokens: [{ deviceToken: 'z'.repeat(64), platform: 'apns' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'fcm token empty',
      { deviceTokens: [{ deviceToken: '', platform: 'fcm' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'fcm token implausible',
      { deviceTokens: [{ deviceToken: 'short token', platform: 'fcm' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'unknown platform',
      { deviceTokens: [{ deviceToken: APNS_TOKEN, platform: 'blackberry' }] },
      'deviceTokens[0].platform',
    ],
    [
      'webpush with http endpoint',
      { deviceTokens: [{ deviceToken: webpushToken('http://push.example.com/x'), platform: 'webpush' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'webpush without keys',
      {
        deviceTokens: [
          { deviceToken: JSON.stringify({ endpoint: 'https://push.example.com/x' }), platform: 'webpush' },
        ],
      },
      'deviceTokens[0].deviceToken',
    ],
    [
      'webpush not json',
      { deviceTokens: [{ deviceToken: 'not json', platform: 'webpush' }] },
      'deviceTokens[0].deviceToken',
    ],
    [
      'slack over http',
      { externalChannels: [{ platform: 'slack', url: 'http://hooks.slack.com/x' }] },
      'externalChannels[0].url',
    ],
    ['slack without url', { externalChannels: [{ platform: 'slack' }] }, 'externalChannels[0].url'],
    [
      'telegram without chatId',
      { externalChannels: [{ platform: 'telegram' }] },
      'externalChannels[0].chatId',
    ],
    [
      'unknown external platform',
      { externalChannels: [{ platform: 'icq', url: SLACK_URL }] },
      'externalChannels[0].platform',
    ],
    [
      'url with credentials',
      { externalChannels: [{ platform: 'discord', url: 'https://u:p@discord.com/api/webhooks/1/x' }] },
      'externalChannels[0].url',
    ],
    [
      'webhook to a private address',
      { externalChannels: [{ platform: 'webhook', url: 'https://10.0.0.7/hook' }] },
      'externalChannels[0].url',
    ],
    [
      'webhook to cloud metadata',
      { externalChannels: [{ platform: 'webhook', url: 'https://169.254.169.254/latest' }] },
      'externalChannels[0].url',
    ],
    [
      'webhook to an internal name',
      { externalChannels: [{ platform: 'webhook', url: 'https://db.internal/x' }] },
      'externalChannels[0].url',
    ],
    ['bad locale', { locale: 'french!' }, 'locale'],
    ['bad timezone', { timezone: 'Mars/Olympus' }, 'timezone'],
    ['unknown field', { emails: 'a@example.com' }, '(body)'],
  ];

  for (const [name, body, field] of cases) {
    it(`${name} → 422 naming ${field}`, async () => {
      const userId = uniqueUser();
      const before = await contactCount();
      const res = await api('PUT', `/v1/contacts/${userId}`, body);
      expect(res.status).toBe(422);
      const err = await json<ErrorBody>(res);
      expect(err.error.code).toBe('validation_error');
      expect(err.error.details?.map((d) => d.field)).toContain(field);
      expect(await contactCount()).toBe(before);
    });
  }

  it('a good FCM token, an E.164 number and an https webhook are accepted', async () => {
    const res = await api('PUT', `/v1/contacts/${uniqueUser()}`, {
      phone: '+447911123456',
      deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
      externalChannels: [
        {
          platform: 'teams',
          url: 'https://prod-00.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke',
        },
      ],
    });
    expect(res.status).toBe(200);
  });

  it('malformed JSON is a 400 envelope, a non-JSON body a 415', async () => {
    const bad = await api('PUT', `/v1/contacts/${uniqueUser()}`, '{"email":');
    expect(bad.status).toBe(400);
    expect((await json<ErrorBody>(bad)).error.code).toBe('bad_request');
    const form = await api('PUT', `/v1/contacts/${uniqueUser()}`, 'email=a@example.com', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
  });

  it('an invalid user id in the path is a 422', async () => {
    const res = await api('PUT', '/v1/contacts/bad%20id', { email: 'a@example.com' });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe('path.userId');
  });
});

describe('contacts: a Web Push subscription on a loopback push service follows the loopback rule', () => {
  const LOCAL_PUSH = 'http://localhost:8788/push/1';
  const development = { ...testEnv, ENVIRONMENT: 'development' } as Env;

  /** A subscription the browser would give: a real P-256 key and a 16-byte auth secret. */
  async function subscription(endpoint: string): Promise<string> {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
      'deriveBits',
    ])) as CryptoKeyPair;
    const p256dh = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
    const keys = {
      p256dh: toBase64Url(p256dh),
      auth: toBase64Url(crypto.getRandomValues(new Uint8Array(16))),
    };
    return JSON.stringify({ endpoint, keys });
  }

  it('a loopback endpoint is refused in production and accepted in development', async () => {
    const userId = uniqueUser();
    for (const endpoint of [LOCAL_PUSH, 'https://localhost/push', 'https://127.0.0.1/push']) {
      const body = { deviceTokens: [{ deviceToken: webpushToken(endpoint), platform: 'webpush' }] };
      const prod = await api('PUT', `/v1/contacts/${userId}`, body);
      expect(prod.status, endpoint).toBe(422);
      expect((await json<ErrorBody>(prod)).error.message).toContain('deviceTokens[0].deviceToken');
      expect((await api('PUT', `/v1/contacts/${userId}`, body, { env: development })).status, endpoint).toBe(
        200,
      );
    }
    // Adding one token: the field is the body's own.
    const added = await api('POST', `/v1/contacts/${userId}/device-tokens`, {
      deviceToken: webpushToken('http://127.0.0.1:9000/push'),
      platform: 'webpush',
    });
    expect(added.status).toBe(422);
    expect((await json<ErrorBody>(added)).error.message).toContain('deviceToken');
  });

  it('an inline recipient of a notification follows the same rule at ingest', async () => {
    const recipients = [{ deviceTokens: [{ deviceToken: webpushToken(LOCAL_PUSH), platform: 'webpush' }] }];
    const body = { type: 'security_alert', channels: ['push'], recipients };
    const prod = await api('POST', '/v1/notifications', body);
    expect(prod.status).toBe(422);
    expect((await json<ErrorBody>(prod)).error.message).toContain(
      'recipients[0].deviceTokens[0].deviceToken',
    );
    expect((await api('POST', '/v1/notifications', body, { env: development })).status).toBe(202);
  });

  it('a private push service endpoint is refused even over https', async () => {
    const body = {
      deviceTokens: [{ deviceToken: webpushToken('https://10.0.0.5/push'), platform: 'webpush' }],
    };
    const res = await api('PUT', `/v1/contacts/${uniqueUser()}`, body, { env: development });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.message).toContain('private address is not allowed');
  });

  it('removing another token does not judge a stored subscription again', async () => {
    const userId = uniqueUser();
    const body = {
      deviceTokens: [
        { deviceToken: webpushToken(LOCAL_PUSH), platform: 'webpush' },
        { deviceToken: APNS_TOKEN, platform: 'apns' },
      ],
    };
    expect((await api('PUT', `/v1/contacts/${userId}`, body, { env: development })).status).toBe(200);
    const removed = await api('DELETE', `/v1/contacts/${userId}/device-tokens/${APNS_TOKEN}`);
    expect(removed.status).toBe(200);
  });

  it('in development a loopback subscription is accepted and sent to', async () => {
    const vapid = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const jwk = (await crypto.subtle.exportKey('jwk', vapid.privateKey)) as JsonWebKey;
    const publicKey = new Uint8Array((await crypto.subtle.exportKey('raw', vapid.publicKey)) as ArrayBuffer);
    const captured = envWithCapturedQueues({
      ENVIRONMENT: 'development',
      PUSH_PROVIDERS: 'webpush',
      VAPID_PUBLIC_KEY: toBase64Url(publicKey),
      VAPID_PRIVATE_KEY: jwk.d,
      VAPID_SUBJECT: 'mailto:ops@herald.example',
    });
    const userId = uniqueUser();
    const deviceToken = await subscription(LOCAL_PUSH);
    const saved = await api(
      'PUT',
      `/v1/contacts/${userId}`,
      { deviceTokens: [{ deviceToken, platform: 'webpush' }] },
      {
        env: captured.env,
      },
    );
    expect(saved.status).toBe(200);
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['push'],
      data: { order_id: 'A1' },
    });
    const calls = fakeFetch(
      () => new Response(null, { status: 201, headers: { location: `${LOCAL_PUSH}/m1` } }),
    );
    await consumeEnqueued(captured, 'push');
    expect(calls.map((call) => call.url)).toEqual([LOCAL_PUSH]);
    expect((await readDeliveries(accepted.id)).map((d) => d.status)).toEqual(['sent']);
  });
});
