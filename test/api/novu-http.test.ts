import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { createServices } from '../../src/services/container';
import { ADMIN_KEY, api, FCM_TOKEN, json, newContact, SLACK_URL, uniqueUser } from '../helpers/api';
import type { NotificationView } from '../helpers/deliveries';
import { envWithCapturedQueues } from '../helpers/queues';
import { snapshotChanges, storageSnapshot } from '../helpers/row-counts';

/*
 * The Novu-compatible routes over raw HTTP, as Novu's documentation shows them (`Authorization:
 * ApiKey <key>`, `idempotency-key`): what the SDK test (novu.test.ts) cannot reach or see. Queues
 * are captured, so nothing runs in the background and "writes nothing" can be checked.
 */

const captured = envWithCapturedQueues();
const ENV: Env = captured.env;

interface NovuErrorBody {
  statusCode: number;
  timestamp: string;
  path: string;
  message: string;
  errors?: Record<string, { messages: string[] }>;
  type?: string;
  error: { code: string; message: string };
}

/** A call the way Novu's documentation makes it: `Authorization: ApiKey <key>` unless told otherwise. */
function novu(
  method: string,
  path: string,
  body?: unknown,
  options: { key?: string; scheme?: string | null; headers?: Record<string, string>; env?: Env } = {},
) {
  const scheme = options.scheme === undefined ? 'ApiKey' : options.scheme;
  const headers: Record<string, string> = { ...options.headers };
  if (scheme !== null) headers.Authorization = `${scheme} ${options.key ?? ADMIN_KEY}`;
  return api(method, path, body, { key: null, headers, env: options.env ?? ENV });
}

const notification = async (id: string) =>
  api('GET', `/v1/notifications/${encodeURIComponent(id)}`, undefined, { env: ENV });

const reminder = (to: unknown, extra: Record<string, unknown> = {}) => ({
  name: 'payment_reminder',
  to,
  payload: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01' },
  ...extra,
});

async function mintKey(scopes: string[]): Promise<string> {
  const res = await api('POST', '/v1/admin/api-keys', { name: `novu ${scopes.join(' ')}`, scopes });
  return (await json<{ key: string }>(res)).key;
}

/** Runs `request` and fails unless it left every table and object as it was. */
async function writesNothing(request: () => Promise<Response>): Promise<Response> {
  const before = await storageSnapshot(ENV);
  const res = await request();
  expect(snapshotChanges(before, await storageSnapshot(ENV))).toEqual([]);
  return res;
}

describe('Novu routes: Authorization: ApiKey', () => {
  it('takes a Herald key as ApiKey or Bearer, and holds it to its scopes', async () => {
    const userId = await newContact({ email: 'apikey.novu@example.com' });
    const sender = await mintKey(['notifications:send']);
    for (const [scheme, key] of [
      ['ApiKey', ADMIN_KEY],
      ['ApiKey', sender],
      ['apikey', sender],
      ['Bearer', sender],
    ] as const) {
      const res = await novu('POST', '/v1/events/trigger', reminder(userId), { scheme, key });
      expect(res.status, `${scheme} ${key}`).toBe(201);
      expect(await json(res)).toMatchObject({ data: { acknowledged: true, status: 'processed' } });
    }
    const reader = await mintKey(['contacts:read']);
    const forbidden = await novu('POST', '/v1/events/trigger', reminder(userId), { key: reader });
    expect(forbidden.status).toBe(403);
    expect(await json<NovuErrorBody>(forbidden)).toMatchObject({
      statusCode: 403,
      path: '/v1/events/trigger',
      message: 'this key lacks the scope notifications:send',
      error: { code: 'forbidden' },
    });
    expect((await novu('POST', '/v2/subscribers', { subscriberId: userId }, { key: sender })).status).toBe(
      403,
    );
  });

  it('refuses a wrong or missing key in Novu’s shape, and ApiKey anywhere but the Novu routes', async () => {
    const wrong = await novu('POST', '/v1/events/trigger', reminder('u'), { key: 'test-admin-kez' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('WWW-Authenticate')).toMatch(/^Bearer realm="herald"/);
    const body = await json<NovuErrorBody>(wrong);
    expect(body).toMatchObject({
      statusCode: 401,
      message: 'invalid API key',
      error: { code: 'unauthorized' },
    });
    expect(Date.parse(body.timestamp)).toBeGreaterThan(Date.now() - 60_000);

    const missing = await novu('DELETE', '/v1/events/trigger/x', undefined, { scheme: null });
    expect(await json<NovuErrorBody>(missing)).toMatchObject({
      statusCode: 401,
      message: 'missing API key: send Authorization: ApiKey <key> or Bearer <key>',
    });
    // Herald's own routes keep one scheme.
    for (const path of ['/v1/notifications', '/v1/contacts/x']) {
      const res = await novu('GET', path);
      expect(res.status, path).toBe(401);
      expect(await json(res), path).toEqual({
        error: { code: 'unauthorized', message: 'missing API key: send Authorization: Bearer <key>' },
      });
    }
  });

  it('answers a Bearer caller (a Herald client) in Herald’s envelope alone', async () => {
    const res = await novu('POST', '/v1/events/trigger', { to: 'u' }, { scheme: 'Bearer' });
    expect(res.status).toBe(422);
    expect(Object.keys(await json(res))).toEqual(['error']);
  });
});

describe('Novu routes: idempotency-key', () => {
  it('without a transactionId the key is the transactionId: same body replays, another is a 422', async () => {
    const userId = await newContact({ email: 'idem.novu@example.com' });
    const key = `idem-${userId}`;
    const headers = { 'idempotency-key': key };
    const first = await novu('POST', '/v1/events/trigger', reminder(userId), { headers });
    expect(first.status).toBe(201);
    expect(await json(first)).toEqual({
      data: { acknowledged: true, status: 'processed', transactionId: key },
    });
    expect(first.headers.get('Idempotency-Key')).toBe(key);
    expect(first.headers.get('Idempotency-Replay')).toBeNull();
    const sentBefore = captured.queues.email.ids().length;

    const again = await novu('POST', '/v1/events/trigger', reminder(userId), { headers });
    expect(again.status).toBe(201);
    expect(await json(again)).toEqual({
      data: { acknowledged: true, status: 'processed', transactionId: key },
    });
    expect(again.headers.get('Idempotency-Replay')).toBe('true');
    expect(captured.queues.email.ids().length).toBe(sentBefore); // nothing enqueued twice

    const other = await writesNothing(() =>
      novu('POST', '/v1/events/trigger', reminder(userId, { payload: { amount: '1.00' } }), { headers }),
    );
    expect(other.status).toBe(422);
    expect(await json<NovuErrorBody>(other)).toMatchObject({
      statusCode: 422,
      message: `Request with key "${key}" is being reused for a different body`,
      errors: { 'idempotency-key': { messages: [expect.stringContaining('different body')] } },
      error: { code: 'idempotency_key_mismatch' },
    });
    const stored = await json<NotificationView>(await notification(key));
    expect(stored.data).toEqual(reminder(userId).payload);
    expect(stored.deliveries).toHaveLength(1);
  });

  it('with a transactionId the key is written down: another transactionId under it is a 422', async () => {
    const userId = await newContact({ email: 'idem.tx.novu@example.com' });
    const headers = { 'idempotency-key': `idem-tx-${userId}` };
    const first = reminder(userId, { transactionId: `tx1-${userId}` });
    expect((await novu('POST', '/v1/events/trigger', first, { headers })).status).toBe(201);
    const replay = await novu('POST', '/v1/events/trigger', first, { headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('Idempotency-Replay')).toBe('true');
    expect(await json(replay)).toEqual({
      data: { acknowledged: true, status: 'processed', transactionId: `tx1-${userId}` },
    });

    const second = reminder(userId, { transactionId: `tx2-${userId}` });
    const reused = await writesNothing(() => novu('POST', '/v1/events/trigger', second, { headers }));
    expect(reused.status).toBe(422);
    expect((await json<NovuErrorBody>(reused)).error.code).toBe('idempotency_key_mismatch');
    expect((await notification(`tx2-${userId}`)).status).toBe(404);
  });

  it('a request that failed is not remembered: its key works for the fixed body', async () => {
    const userId = await newContact({ email: 'idem.fail.novu@example.com' });
    const headers = { 'idempotency-key': `idem-fail-${userId}` };
    const broken = reminder(userId, { name: 'no_such_workflow', transactionId: `fail-${userId}` });
    expect((await writesNothing(() => novu('POST', '/v1/events/trigger', broken, { headers }))).status).toBe(
      422,
    );
    const fixed = reminder(userId, { transactionId: `fail-${userId}` });
    const res = await novu('POST', '/v1/events/trigger', fixed, { headers });
    expect(res.status).toBe(201);
    expect(res.headers.get('Idempotency-Replay')).toBeNull();
  });

  it('binds a bulk request and a subscriber upsert to their body too', async () => {
    const userId = await newContact({ email: 'idem.bulk.novu@example.com' });
    const headers = { 'idempotency-key': `idem-bulk-${userId}` };
    const events = { events: [reminder(userId), reminder(userId, { name: 'no_such_workflow' })] };
    const first = await json<{ data: { transactionId?: string }[] }>(
      await novu('POST', '/v1/events/trigger/bulk', events, { headers }),
    );
    expect(first.data[0]?.transactionId).toBe(`idem-bulk-${userId}.0`);
    const again = await novu('POST', '/v1/events/trigger/bulk', events, { headers });
    expect(again.headers.get('Idempotency-Replay')).toBe('true');
    expect(await json(again)).toEqual(first);
    const changed = { events: [reminder(userId, { payload: { amount: '2.00' } })] };
    expect((await novu('POST', '/v1/events/trigger/bulk', changed, { headers })).status).toBe(422);

    const subscriber = { 'idempotency-key': `idem-sub-${userId}` };
    const upsert = { subscriberId: userId, phone: '+14155550111' };
    expect((await novu('POST', '/v2/subscribers', upsert, { headers: subscriber })).status).toBe(201);
    const repeated = await novu('POST', '/v2/subscribers', upsert, { headers: subscriber });
    expect(repeated.status).toBe(201);
    expect(repeated.headers.get('Idempotency-Replay')).toBe('true');
    const other = { subscriberId: userId, phone: '+14155550112' };
    expect((await novu('POST', '/v2/subscribers', other, { headers: subscriber })).status).toBe(422);
    expect(await json(await api('GET', `/v1/contacts/${userId}`))).toMatchObject({ phone: '+14155550111' });
  });

  it('refuses a key longer than 255 characters with Novu’s 400', async () => {
    const res = await writesNothing(() =>
      novu('POST', '/v1/events/trigger', reminder('u'), { headers: { 'idempotency-key': 'k'.repeat(256) } }),
    );
    expect(res.status).toBe(400);
    expect(await json<NovuErrorBody>(res)).toMatchObject({
      statusCode: 400,
      type: 'bad_request',
      errors: [],
    });
  });
});

describe('Novu routes: triggers', () => {
  it('an unknown workflow, or a name no type can have, is Novu’s 422 workflow_not_found', async () => {
    for (const name of ['no_such_workflow', 'Welcome Email!']) {
      const res = await writesNothing(() => novu('POST', '/v1/events/trigger', reminder('u_1', { name })));
      expect(res.status, name).toBe(422);
      expect(await json<NovuErrorBody>(res), name).toMatchObject({
        statusCode: 422,
        message: 'workflow_not_found',
        errors: { name: { messages: [expect.stringContaining(name)] } },
        error: { code: 'workflow_not_found' },
      });
    }
  });

  it('validation errors name the field as the Novu body names it', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'payment_reminder' }, 'to'],
      [reminder([]), 'to'],
      [reminder({ subscriberId: 'u_1', email: 'nope' }), 'to.email'],
      [reminder(['u_1', { subscriberId: 'u_2', phone: '555' }]), 'to[1].phone'],
      [reminder(['bad id!']), 'to[0]'],
      [reminder('u_1', { transactionId: 'has space' }), 'transactionId'],
      [reminder('u_1', { payload: { big: 'x'.repeat(33 * 1024) } }), 'payload'],
      [
        reminder({
          subscriberId: 'u_1',
          channels: [{ providerId: 'slack', credentials: { webhookUrl: 'http://127.0.0.1/x' } }],
        }),
        'to.channels[0].url',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await writesNothing(() => novu('POST', '/v1/events/trigger', body));
      const answer = await json<NovuErrorBody>(res);
      expect(res.status, field).toBe(422);
      expect(Object.keys(answer.errors ?? {}), JSON.stringify(answer)).toEqual([field]);
    }
    const bulk = await novu('POST', '/v1/events/trigger/bulk', {
      events: [reminder('u_1'), reminder([{ subscriberId: 'u_2', email: 'nope' }])],
    });
    expect(bulk.status).toBe(422);
    expect(Object.keys((await json<NovuErrorBody>(bulk)).errors ?? {})).toEqual(['events[1].to[0].email']);
    const empty = await novu('POST', '/v1/events/trigger/bulk', { events: [] });
    expect(Object.keys((await json<NovuErrorBody>(empty)).errors ?? {})).toEqual(['events']);
  });

  it('a transactionId repeated with another body is ignored, said so, and sends nothing', async () => {
    const userId = await newContact({ email: 'tx.novu@example.com' });
    const transactionId = `tx-other-${userId}`;
    expect((await novu('POST', '/v1/events/trigger', reminder(userId, { transactionId }))).status).toBe(201);
    const changed = reminder(userId, { transactionId, payload: { amount: '9.99' } });
    const res = await writesNothing(() => novu('POST', '/v1/events/trigger', changed));
    expect(res.status).toBe(201);
    expect(await json(res)).toEqual({
      data: {
        acknowledged: true,
        status: 'error',
        transactionId,
        error: [
          `transactionId "${transactionId}" was triggered before with a different body; this trigger was ignored`,
        ],
      },
    });
  });

  it('maps an inline subscriber’s addresses and channels for this notification, storing nothing', async () => {
    const subscriberId = uniqueUser('novu_inline');
    const res = await novu(
      'POST',
      '/v1/events/trigger',
      reminder({
        subscriberId,
        email: 'inline.novu@example.com',
        firstName: 'Grace',
        channels: [
          { providerId: 'slack', credentials: { webhookUrl: SLACK_URL } },
          { providerId: 'fcm', credentials: { deviceTokens: [FCM_TOKEN] } },
          { providerId: 'expo', credentials: { deviceTokens: ['ExponentPushToken[x]'] } },
        ],
      }),
    );
    expect(res.status).toBe(201);
    const { data } = await json<{ data: { transactionId: string } }>(res);
    const stored = await json<NotificationView>(await notification(data.transactionId));
    const planned = stored.deliveries.map((d) => [d.channel, d.status, d.address]);
    expect(planned).toEqual([
      ['email', 'queued', { channel: 'email', email: 'inline.novu@example.com' }],
      ['push', 'queued', { channel: 'push', platform: 'fcm', deviceToken: FCM_TOKEN }],
      ['chat', 'queued', { channel: 'chat', platform: 'slack', url: SLACK_URL }],
    ]); // no phone, no webhook, and Expo is not a Herald provider
    expect((await api('GET', `/v1/contacts/${subscriberId}`)).status).toBe(404);
  });

  it('cancels by transactionId: true when something waited, false otherwise', async () => {
    const userId = await newContact({ email: 'cancel.novu@example.com' });
    const transactionId = `cancel-${userId}`;
    const later = reminder(userId, { transactionId });
    expect((await novu('POST', '/v1/events/trigger', later)).status).toBe(201);
    const res = await novu('DELETE', `/v1/events/trigger/${transactionId}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ data: true });
    expect(await json(await novu('DELETE', `/v1/events/trigger/${transactionId}`))).toEqual({ data: false });
    expect(await json(await novu('DELETE', '/v1/events/trigger/no%20such%20id'))).toEqual({ data: false });
    const stored = await json<NotificationView>(await notification(transactionId));
    expect(stored.deliveries.map((d) => d.status)).toEqual(['canceled']);
  });
});

describe('Novu routes: subscribers', () => {
  it('creates, then updates only the fields sent, keeping device tokens and channels', async () => {
    const subscriberId = uniqueUser('novu_sub');
    const created = await novu('POST', '/v2/subscribers', {
      subscriberId,
      email: 'sub.novu@example.com',
      lastName: 'Hopper',
      data: { plan: 'pro' },
    });
    expect(created.status).toBe(201);
    expect(await json(created)).toEqual({
      data: {
        _id: subscriberId,
        subscriberId,
        email: 'sub.novu@example.com',
        phone: null,
        locale: null,
        timezone: null,
        _organizationId: 'herald',
        _environmentId: 'herald',
        deleted: false,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      },
    });
    await api('POST', `/v1/contacts/${subscriberId}/device-tokens`, {
      deviceToken: FCM_TOKEN,
      platform: 'fcm',
    });
    const updated = await novu('POST', '/v2/subscribers', {
      subscriberId,
      phone: '+14155550177',
      email: null,
    });
    expect(updated.status).toBe(201);
    expect(await json(await api('GET', `/v1/contacts/${subscriberId}`))).toMatchObject({
      email: null,
      phone: '+14155550177',
      deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
    });
  });

  it('failIfExists answers 409 with the subscriber; invalid fields are 422s naming them', async () => {
    const subscriberId = await newContact({ email: 'exists.sub.novu@example.com' });
    const conflict = await writesNothing(() =>
      novu('POST', '/v2/subscribers?failIfExists=true', { subscriberId, email: 'x@example.com' }),
    );
    expect(conflict.status).toBe(409);
    expect(await json(conflict)).toMatchObject({
      statusCode: 409,
      subscriberId,
      email: 'exists.sub.novu@example.com',
      error: { code: 'subscriber_exists' },
    });
    for (const [body, field] of [
      [{ subscriberId: 'bad id!' }, 'subscriberId'],
      [{ subscriberId, phone: '555-0100' }, 'phone'],
      [{ subscriberId, timezone: 'Mars/Olympus' }, 'timezone'],
      [{ email: 'a@example.com' }, 'subscriberId'],
    ] as const) {
      const res = await writesNothing(() => novu('POST', '/v2/subscribers', body));
      expect(res.status, field).toBe(422);
      expect(Object.keys((await json<NovuErrorBody>(res)).errors ?? {}), field).toEqual([field]);
    }
  });
});

describe('Novu routes: topics', () => {
  it('creates a topic (201), updates it (200), keeps its name when none is sent; failIfExists is a 409', async () => {
    const key = uniqueUser('novu_topic');
    const created = await novu('POST', '/v2/topics', { key, name: 'Followers', data: { ignored: true } });
    expect(created.status).toBe(201);
    expect(await json(created)).toEqual({
      data: {
        _id: key,
        key,
        name: 'Followers',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      },
    });
    const same = await novu('POST', '/v2/topics', { key });
    expect(same.status).toBe(200);
    expect((await json<{ data: { name: string } }>(same)).data.name).toBe('Followers');
    const renamed = await novu('POST', '/v2/topics', { key, name: 'Watchers' });
    expect((await json<{ data: { name: string } }>(renamed)).data.name).toBe('Watchers');

    const conflict = await writesNothing(() =>
      novu('POST', '/v2/topics?failIfExists=true', { key, name: 'Other' }),
    );
    expect(conflict.status).toBe(409);
    expect(await json(conflict)).toMatchObject({
      statusCode: 409,
      key,
      name: 'Watchers',
      error: { code: 'topic_exists' },
    });
    const invalid = await writesNothing(() => novu('POST', '/v2/topics', { key: 'bad key!' }));
    expect(invalid.status).toBe(422);
    expect(Object.keys((await json<NovuErrorBody>(invalid)).errors ?? {})).toEqual(['key']);
  });

  it('subscribing to a topic that does not exist creates it, as Novu does', async () => {
    const key = uniqueUser('novu_new_topic');
    const [a, b] = [uniqueUser('sub_a'), uniqueUser('sub_b')];
    const res = await novu('POST', `/v2/topics/${key}/subscriptions`, {
      subscriptions: [{ subscriberId: a, identifier: 'ignored' }, b],
      subscriberIds: [a],
      name: 'Made by a subscription',
    });
    expect(res.status).toBe(201);
    const body = await json<{ data: { subscriber: { subscriberId: string } }[]; meta: unknown }>(res);
    expect(body.data.map((s) => s.subscriber.subscriberId)).toEqual([a, b]);
    expect(body.meta).toEqual({ totalCount: 2, successful: 2, failed: 0 });
    const services = createServices(ENV);
    expect(await services.topics.get(key)).toMatchObject({ key, name: 'Made by a subscription' });
    expect((await services.topicSubscriptions.page(key, undefined, 10)).map((s) => s.userId).sort()).toEqual(
      [a, b].sort(),
    );

    for (const [path, sent, field] of [
      [`/v2/topics/${key}/subscriptions`, {}, 'subscriberIds'],
      [`/v2/topics/${key}/subscriptions`, { subscriberIds: ['bad id!'] }, 'subscriberIds[0]'],
      ['/v2/topics/bad%20key/subscriptions', { subscriberIds: [a] }, 'topicKey'],
    ] as const) {
      const refused = await writesNothing(() => novu('POST', path, sent));
      expect(refused.status, field).toBe(422);
      expect(Object.keys((await json<NovuErrorBody>(refused)).errors ?? {}), field).toEqual([field]);
    }
  });

  it('a topic that does not exist is a 422 naming it as the Novu body does', async () => {
    const topicKey = uniqueUser('no_such_topic');
    const res = await writesNothing(() =>
      novu('POST', '/v1/events/trigger', reminder({ type: 'Topic', topicKey })),
    );
    expect(res.status).toBe(422);
    const body = await json<NovuErrorBody>(res);
    expect(body.error.code).toBe('unknown_topic');
    expect(body.message).toMatch(/^to: /);
    expect(Object.keys(body.errors ?? {})).toEqual(['to.topicKey']);
  });

  it('a topic recipient is validated as Herald validates one', async () => {
    const res = await writesNothing(() =>
      novu('POST', '/v1/events/trigger', reminder({ type: 'Topic', topicKey: 'bad key!' })),
    );
    expect(res.status).toBe(422);
    expect(Object.keys((await json<NovuErrorBody>(res)).errors ?? {})).toEqual(['to.topicKey']);
  });
});
