import { beforeAll, describe, expect, it } from 'vitest';
import { grants, requiredScope } from '../../src/api/shared/scopes';
import { createApiKey } from '../../src/services/access/api-keys';
import { ApiKeysRepo } from '../../src/storage/api-keys-repo';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/**
 * Who sees what: a `notifications:read` key sees addresses masked on every route it can call, a
 * `contacts:read` key (and admin) sees them whole, and no route returns a webhook signing secret
 * to anyone. Every route is taken from GET /openapi.json, so a new route is walked the day it lands.
 */

const EMAIL = 'grace.whoseeswhat@example.org';
const PHONE = '+14155557788';
const APNS = 'c0ffee42'.repeat(8);
const FCM = `fcm-${'w'.repeat(40)}:APA91b${'Z'.repeat(120)}`;
const PUSH_ENDPOINT = 'https://fcm.googleapis.com/fcm/send/wsw-subscription-0123456789';
const WEBPUSH = JSON.stringify({
  endpoint: PUSH_ENDPOINT,
  keys: { p256dh: `B${'Q'.repeat(86)}`, auth: 'wswAuthSecret012345678' },
});
const SLACK = 'https://hooks.slack.com/services/TWSW0001/BWSW0002/slackPathSecret0123';
const DISCORD = 'https://discord.com/api/webhooks/112233445566/discordPathSecret0123';
const TEAMS = 'https://example.webhook.office.com/webhookb2/teamsPathSecret0123';
const WEBHOOK = 'https://hooks.example.net/herald/endpointPathSecret0123';
const SECRET = 'whsec_V2hvU2Vlc1doYXRDb250YWN0U2VjcmV0MDEyMzQ1';
const INLINE_WEBHOOK = 'https://inline.example.net/hook/inlinePathSecret0123';
const INLINE_SECRET = 'whsec_SW5saW5lUmVjaXBpZW50U2VjcmV0MDEyMzQ1Njc4';
const INLINE_EMAIL = 'inline.whoseeswhat@example.org';

/** Every value (and telling fragment of one) a masked view must never show. */
const IN_CLEAR = [
  EMAIL,
  'grace.whoseeswhat',
  INLINE_EMAIL,
  'inline.whoseeswhat',
  PHONE,
  '4155557788',
  APNS,
  APNS.slice(0, 40),
  FCM.slice(0, 40),
  'wsw-subscription',
  'wswAuthSecret',
  'slackPathSecret',
  'TWSW0001',
  'discordPathSecret',
  'teamsPathSecret',
  'endpointPathSecret',
  'inlinePathSecret',
  '-1001234567890',
];

interface Route {
  method: string;
  path: string;
}

const scenario = {} as {
  userId: string;
  notificationId: string;
  keys: { read: string; contacts: string; readAndContacts: string };
};

beforeAll(async () => {
  const make = async (scopes: string[]) =>
    (await createApiKey(new ApiKeysRepo(testEnv.DB), { name: `who ${scopes.join(' ')}`, scopes }, Date.now()))
      .key;
  const userId = uniqueUser('wsw');
  const put = await api('PUT', `/v1/contacts/${userId}`, {
    email: EMAIL,
    phone: PHONE,
    deviceTokens: [
      { deviceToken: APNS, platform: 'apns' },
      { deviceToken: FCM, platform: 'fcm' },
      { deviceToken: WEBPUSH, platform: 'webpush' },
    ],
    externalChannels: [
      { platform: 'slack', url: SLACK },
      { platform: 'discord', url: DISCORD },
      { platform: 'teams', url: TEAMS },
      { platform: 'telegram', chatId: '-1001234567890' },
      { platform: 'webhook', url: WEBHOOK, secret: SECRET },
    ],
  });
  expect(put.status).toBe(200);
  const captured = envWithCapturedQueues();
  const accepted = await sendNotification(captured, {
    type: 'security_alert',
    recipients: [
      userId,
      {
        userId: uniqueUser('wsw-inline'),
        email: INLINE_EMAIL,
        externalChannels: [{ platform: 'webhook', url: INLINE_WEBHOOK, secret: INLINE_SECRET }],
      },
    ],
    channels: ['email', 'sms', 'push', 'chat', 'webhook'],
    data: { note: 'who sees what' },
  });
  await drainQueues(captured);
  Object.assign(scenario, {
    userId,
    notificationId: accepted.id,
    keys: {
      read: await make(['notifications:read']),
      contacts: await make(['contacts:read']),
      readAndContacts: await make(['notifications:read', 'contacts:read']),
    },
  });
});

/** Every documented route, as `GET /openapi.json` lists it. */
async function documentedRoutes(): Promise<Route[]> {
  const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(
    await api('GET', '/openapi.json', undefined, { key: null }),
  );
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
  );
}

/** A route with its parameters filled in from the scenario (and a variant per useful filter). */
function urlsOf(path: string): string[] {
  const url = path
    .replace('{id}', scenario.notificationId)
    .replace('{userId}', scenario.userId)
    .replace('{type}', 'security_alert')
    .replace('{channel}', 'email')
    .replace(/\{[^}]+\}/g, 'wsw');
  if (path === '/v1/notifications')
    return [url, `${url}?userId=${scenario.userId}`, `${url}?channel=webhook`];
  if (path === '/v1/outbox') return [url, `${url}?userId=${scenario.userId}`, `${url}?channel=webhook`];
  return [url];
}

/** GET every route `scopes` may call (only reads: the walk must change nothing); the bodies. */
async function walk(key: string, scopes: string[]): Promise<{ url: string; status: number; body: string }[]> {
  const routes = (await documentedRoutes()).filter(
    (r) =>
      r.method === 'GET' &&
      !r.path.startsWith('/v1/webhooks/') &&
      grants(scopes, requiredScope(r.method, r.path)),
  );
  const out: { url: string; status: number; body: string }[] = [];
  for (const { path } of routes) {
    for (const url of urlsOf(path)) {
      const res = await api('GET', url, undefined, { key });
      out.push({ url, status: res.status, body: await res.text() });
    }
  }
  return out;
}

describe('who sees what: notifications:read', () => {
  it('a notifications:read key never sees an address in clear or a whsec_ anywhere it can read', async () => {
    const pages = await walk(scenario.keys.read, ['notifications:read']);
    const walked = pages.map((p) => p.url.split('?')[0]);
    for (const route of ['/v1/notifications', `/v1/notifications/${scenario.notificationId}`, '/v1/outbox'])
      expect(walked, `walked ${route}`).toContain(route);
    for (const { url, status, body } of pages) {
      expect(status, url).toBe(200);
      expect(body, url).not.toMatch(/whsec_/);
      for (const clear of IN_CLEAR) expect(body, `${url} shows ${clear}`).not.toContain(clear);
    }
  });

  it('it sees each address masked: enough to tell them apart, not to use them', async () => {
    const res = await api('GET', `/v1/notifications/${scenario.notificationId}`, undefined, {
      key: scenario.keys.read,
    });
    const body = await json<{ deliveries: { userId: string; address: Record<string, unknown> | null }[] }>(
      res,
    );
    const addresses = body.deliveries.map((d) => d.address);
    expect(addresses).toEqual(
      expect.arrayContaining([
        { channel: 'email', email: 'g***@example.org' },
        { channel: 'email', email: 'i***@example.org' },
        { channel: 'sms', phone: '+1415***7788' },
        { channel: 'push', platform: 'apns', deviceToken: `***${APNS.slice(-6)}` },
        { channel: 'push', platform: 'fcm', deviceToken: `***${FCM.slice(-6)}` },
        { channel: 'push', platform: 'webpush', deviceToken: 'https://fcm.googleapis.com/***' },
        { channel: 'chat', platform: 'slack', url: 'https://hooks.slack.com/***' },
        { channel: 'chat', platform: 'discord', url: 'https://discord.com/***' },
        { channel: 'chat', platform: 'teams', url: 'https://example.webhook.office.com/***' },
        { channel: 'chat', platform: 'telegram', chatId: '***7890' },
        { channel: 'webhook', url: 'https://hooks.example.net/***', secretSet: true },
        { channel: 'webhook', url: 'https://inline.example.net/***', secretSet: true },
      ]),
    );
    // and nothing else: the inline recipient's sms, push and chat were skipped (no address).
    expect(addresses.filter((a) => a !== null)).toHaveLength(12);
  });
});

describe('who sees what: contacts:read and admin', () => {
  it('contacts:read sees the contact whole, but never its webhook secret (secretSet instead)', async () => {
    const res = await api('GET', `/v1/contacts/${scenario.userId}`, undefined, {
      key: scenario.keys.contacts,
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('whsec_');
    const contact = JSON.parse(text) as Record<string, unknown>;
    expect(contact).toMatchObject({ email: EMAIL, phone: PHONE });
    expect(contact.deviceTokens).toEqual([
      { deviceToken: APNS, platform: 'apns' },
      { deviceToken: FCM, platform: 'fcm' },
      { deviceToken: WEBPUSH, platform: 'webpush' },
    ]);
    expect(contact.externalChannels).toEqual([
      { platform: 'slack', url: SLACK, status: true },
      { platform: 'discord', url: DISCORD, status: true },
      { platform: 'teams', url: TEAMS, status: true },
      { platform: 'telegram', chatId: '-1001234567890', status: true },
      { platform: 'webhook', url: WEBHOOK, status: true, secretSet: true },
    ]);
  });

  it('with contacts:read as well, deliveries show addresses whole, still without a secret', async () => {
    const res = await api('GET', `/v1/notifications/${scenario.notificationId}`, undefined, {
      key: scenario.keys.readAndContacts,
    });
    const text = await res.text();
    expect(text).not.toContain('whsec_');
    for (const whole of [EMAIL, PHONE, APNS, SLACK, WEBHOOK, INLINE_WEBHOOK]) expect(text).toContain(whole);
    const webhooks = (
      JSON.parse(text) as { deliveries: { address: { channel: string } | null }[] }
    ).deliveries
      .map((d) => d.address)
      .filter((a) => a?.channel === 'webhook');
    expect(webhooks).toEqual([
      { channel: 'webhook', url: WEBHOOK, secretSet: true },
      { channel: 'webhook', url: INLINE_WEBHOOK, secretSet: true },
    ]);
  });

  it('the export (contacts:read) holds every address whole and no whsec_', async () => {
    const res = await api('GET', `/v1/contacts/${scenario.userId}/export`, undefined, {
      key: scenario.keys.contacts,
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('whsec_');
    for (const whole of [EMAIL, PHONE, APNS, SLACK, WEBHOOK]) expect(text).toContain(whole);
  });

  it('no GET route returns a whsec_ secret, for any scope (admin walks them all)', async () => {
    for (const [key, scopes] of [
      [scenario.keys.contacts, ['contacts:read']],
      [scenario.keys.readAndContacts, ['notifications:read', 'contacts:read']],
      ['test-admin-key', ['admin']],
    ] as const) {
      const pages = await walk(key, [...scopes]);
      expect(pages.length).toBeGreaterThan(0);
      for (const { url, body } of pages) expect(body, `${url} (${scopes.join(' ')})`).not.toMatch(/whsec_/);
    }
  });

  it('writing a contact answers without the secret it was given', async () => {
    const userId = uniqueUser('wsw-put');
    const channel = { platform: 'webhook', url: WEBHOOK, secret: SECRET };
    const put = await api('PUT', `/v1/contacts/${userId}`, { externalChannels: [channel] });
    const patch = await api('PATCH', `/v1/contacts/${userId}`, { externalChannels: [channel] });
    for (const res of [put, patch]) {
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('whsec_');
      expect(JSON.parse(text).externalChannels).toEqual([
        { platform: 'webhook', url: WEBHOOK, status: true, secretSet: true },
      ]);
    }
  });
});
