import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/api/app';
import type { Env } from '../../src/config/env';
import { SESSION_COOKIE, SESSION_PURPOSE } from '../../src/dashboard/session';
import worker from '../../src/index';
import { signToken } from '../../src/lib/signed-token';
import { ADMIN_KEY, APNS_TOKEN, api, FCM_TOKEN, json, SLACK_URL, seedEvent, testEnv } from '../helpers/api';
import { envWithCapturedQueues } from '../helpers/queues';
import { snapshotChanges, storageSnapshot } from '../helpers/row-counts';

/**
 * Property-based hostile input over every route Herald serves. The routes come from
 * GET /openapi.json plus the Hono app's own route table (the dashboard, /healthz, /openapi.json),
 * so a new route is fuzzed without touching this file; a route with a body also needs a valid
 * sample below, and a test fails until it has one.
 *
 * The properties, for every request:
 *   - never a 5xx;
 *   - a 4xx is the JSON error envelope `{ error: { code, message } }`, except the HTML pages
 *     (/u/*, /dashboard/*); the open pixel is always a 200 GIF;
 *   - a rejected request (4xx, or any request carrying one of our forged tracking/unsubscribe
 *     tokens) writes nothing: every table's rows and every R2 object are unchanged;
 *   - no response body contains a secret, and Object.prototype is never polluted.
 *
 * Test files do not share storage (each file runs in its own Miniflare instance), and the queues
 * are capturing ones, so no consumer writes in the background between the two snapshots.
 * Failures are reproducible: the seed is fixed and the failing request is printed in full.
 */

const SEED = 20_261_128;
const BODY_ROUTE_RUNS = 16;
const OTHER_ROUTE_RUNS = 5;
const KB = 1024;
const API_BODY_LIMIT = 100 * KB;
const POLLUTION_KEY = 'heraldPolluted';

afterEach(() => vi.restoreAllMocks());

// ---------------------------------------------------------------------------------------------
// Environment: every callback secret set, so hostile callbacks reach the signature checks.

const CALLBACK_SECRETS = {
  TWILIO_AUTH_TOKEN: 'twilio-callback-secret-0001',
  SENDGRID_WEBHOOK_PUBLIC_KEY:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==',
  RESEND_WEBHOOK_SECRET: `whsec_${btoa('resend-callback-secret-0002')}`,
  MAILGUN_WEBHOOK_SIGNING_KEY: 'mailgun-callback-secret-0003',
  POSTMARK_WEBHOOK_USER: 'postmark-user',
  POSTMARK_WEBHOOK_PASSWORD: 'postmark-callback-secret-0004',
  VONAGE_SIGNATURE_SECRET: 'vonage-callback-secret-0005',
  VONAGE_SIGNATURE_METHOD: 'sha256',
};

const captured = envWithCapturedQueues(CALLBACK_SECRETS);
const ENV: Env = captured.env;

/** Values that must never appear in any response. */
const SECRETS = [
  ADMIN_KEY,
  String(testEnv.SIGNING_SECRET),
  ...String(testEnv.DATA_ENCRYPTION_KEY ?? '')
    .split(',')
    .map((entry) => entry.split(':')[1] ?? '')
    .filter((key) => key.length > 0),
  ...Object.entries(CALLBACK_SECRETS)
    .filter(([name]) => !name.endsWith('_METHOD') && !name.endsWith('_USER'))
    .map(([, value]) => value),
];

// ---------------------------------------------------------------------------------------------
// The route inventory.

interface Route {
  method: string;
  /** OpenAPI spelling: `/v1/contacts/{userId}`. */
  template: string;
  queryParams: string[];
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>>;
}

async function routeInventory(): Promise<Route[]> {
  const doc = await json<OpenApiDoc>(await api('GET', '/openapi.json', undefined, { key: null }));
  const routes = new Map<string, Route>();
  for (const [template, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const queryParams = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      routes.set(`${method.toUpperCase()} ${template}`, {
        method: method.toUpperCase(),
        template,
        queryParams,
      });
    }
  }
  // Routes the OpenAPI document does not describe: the dashboard, /healthz, /openapi.json.
  for (const { method, path } of createApp().routes) {
    if (method === 'ALL' || path.includes('*')) continue;
    const template = path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const key = `${method} ${template}`;
    if (!routes.has(key)) routes.set(key, { method, template, queryParams: [] });
  }
  return [...routes.values()].sort((a, b) =>
    `${a.template} ${a.method}`.localeCompare(`${b.template} ${b.method}`),
  );
}

const ROUTES = await routeInventory();
const routeKey = (r: Route) => `${r.method} ${r.template}`;
const takesBody = (r: Route) => ['POST', 'PUT', 'PATCH'].includes(r.method);
const INBOX_CLIENT = /^\/v1\/inbox\/(feed|counts|items)/;
const isJsonApi = (template: string) =>
  (template.startsWith('/v1/') || template.startsWith('/v2/')) && !template.startsWith('/v1/webhooks/');

// ---------------------------------------------------------------------------------------------
// Valid inputs, the starting point of every mutation.

const USER = 'sec_user_1';
const NOTIFICATION_ID = 'sec-notification-1';

const VALID_PARAMS: Record<string, string> = {
  userId: USER,
  id: NOTIFICATION_ID,
  type: 'payment_reminder',
  channel: 'email',
  name: 'resend',
  provider: 'sendgrid',
  action: 'read',
  transactionId: NOTIFICATION_ID,
  key: 'sec_topic_1',
  topicKey: 'sec_topic_1',
  // Well-formed but signed with nothing: Herald must treat it as forged.
  token: `eyJ2IjoxLCJkIjoiZGx2XzEifQ.${'A'.repeat(43)}`,
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const WEBHOOK_SECRET = `whsec_${btoa('0123456789abcdef')}`;

/** The personal data in the valid samples: none of it may ever reach a log line. */
const PERSONAL_DATA = [
  'ada@example.com',
  'grace@example.com',
  '+14155550123',
  '+14155550124',
  FCM_TOKEN,
  APNS_TOKEN,
  SLACK_URL,
  WEBHOOK_SECRET,
];

const CONTACT: Json = {
  email: 'ada@example.com',
  phone: '+14155550123',
  deviceTokens: [
    { deviceToken: FCM_TOKEN, platform: 'fcm' },
    { deviceToken: APNS_TOKEN, platform: 'apns' },
  ],
  externalChannels: [
    { platform: 'slack', url: SLACK_URL, status: true },
    { platform: 'webhook', url: 'https://hooks.example.com/herald', secret: WEBHOOK_SECRET },
    { platform: 'telegram', chatId: '-100123' },
  ],
  locale: 'en-GB',
  timezone: 'Europe/London',
};

const NOTIFICATION: Json = {
  id: NOTIFICATION_ID,
  type: 'payment_reminder',
  source: 'billing',
  recipients: [USER, { email: 'grace@example.com', phone: '+14155550124' }],
  channels: ['email', 'sms'],
  data: { amount: '42.00', currency: 'EUR', name: 'Ada', lines: [{ sku: 'A-1', qty: 2 }] },
  priority: 'high',
  sendAt: '2030-01-01T10:00:00Z',
  dedupeKey: 'invoice-2026-001',
};

const EVENTBRIDGE_EVENT: Json = seedEvent('6a7e8feb-b491-4cf7-a9f1-bf3703467718', {
  userId: USER,
  message: 'Your payment of 42.00 EUR is due tomorrow.',
});

const PREFERENCES: Json = {
  channels: { sms: false },
  types: { order_shipped: { sms: false, all: true } },
  quietHours: { start: '22:00', end: '07:00' },
};

/**
 * One or more valid bodies per route with a body: JSON values for the API, strings (form
 * encoded or raw) for the pages and provider callbacks.
 */
const VALID_BODIES: Record<string, (Json | string)[]> = {
  'PUT /v1/contacts/{userId}': [CONTACT],
  'PATCH /v1/contacts/{userId}': [{ phone: null, timezone: 'Europe/Paris' }, CONTACT],
  'POST /v1/contacts/{userId}/device-tokens': [{ deviceToken: APNS_TOKEN, platform: 'apns' }],
  'PUT /v1/contacts/{userId}/preferences': [PREFERENCES],
  'PATCH /v1/contacts/{userId}/preferences': [{ quietHours: null, channels: { push: true } }],
  'POST /v1/notifications': [NOTIFICATION, EVENTBRIDGE_EVENT],
  'POST /v1/notifications/batch': [
    {
      notifications: [
        { type: 'order_shipped', recipients: [USER], data: { order_id: 'A-1002' } },
        { type: 'security_alert', recipients: [{ email: 'ops@example.com' }], priority: 'critical' },
      ],
    },
  ],
  'PUT /v1/admin/providers/{name}': [{ enabled: true }],
  'POST /v1/admin/dead-letters/replay': [{ ids: ['dlv_00000000000000000000000000'] }, { channel: 'sms' }],
  'POST /v1/admin/api-keys': [
    {
      name: 'billing service',
      scopes: ['notifications:send'],
      types: ['payment_reminder'],
      sources: ['billing'],
      expiresAt: '2030-01-01T00:00:00Z',
    },
  ],
  'POST /v1/admin/rotate-key': [{ table: 'contacts', cursor: '', limit: 50 }, { table: 'deliveries' }],
  // A moment before any row: nothing is removed, and the answer is still a 200.
  'POST /v1/admin/retention/run': [{ before: '2000-01-01T00:00:00Z' }],
  // Nothing is moving: an abort answers where the bucket is, and no mutation can start a move.
  'POST /v1/admin/shards/move': [{ bucket: 200, to: 'DB_1', step: 'abort' }],
  'POST /v1/inbox/tokens': [{ userId: USER }, { userId: USER, ttlSeconds: 600 }],
  'PUT /v1/topics/{key}': [{}, { name: 'Security topic' }, { name: null }],
  'POST /v1/topics/{key}/subscribers': [{ userIds: [USER, 'sec_user_2'] }],
  'DELETE /v1/topics/{key}/subscribers': [{ userIds: ['sec_user_2'] }],
  'POST /v1/events/trigger': [
    {
      name: 'payment_reminder',
      to: [
        USER,
        {
          subscriberId: 'sec_user_2',
          email: 'grace@example.com',
          phone: '+14155550124',
          channels: [
            { providerId: 'slack', credentials: { webhookUrl: SLACK_URL } },
            { providerId: 'fcm', credentials: { deviceTokens: [FCM_TOKEN] } },
          ],
        },
        { type: 'Topic', topicKey: 'sec_topic_1', exclude: ['sec_user_3'] },
      ],
      payload: { amount: '42.00', currency: 'EUR' },
      transactionId: 'sec-novu-1',
      actor: { subscriberId: 'sec_user_3', firstName: 'Ada' },
      overrides: { email: { from: 'x' } },
      tenant: 'acme',
    },
  ],
  'POST /v1/events/trigger/bulk': [
    {
      events: [
        { name: 'payment_reminder', to: USER, payload: { amount: '1' } },
        { name: 'order_shipped', to: { subscriberId: USER }, transactionId: 'sec-novu-2' },
      ],
    },
  ],
  'POST /v2/subscribers': [
    {
      subscriberId: USER,
      email: 'ada@example.com',
      phone: '+14155550123',
      locale: 'en_GB',
      timezone: 'Europe/London',
      firstName: 'Ada',
      data: { plan: 'pro' },
    },
  ],
  'POST /v2/topics': [{ key: 'sec_topic_1', name: 'Security topic', data: {} }],
  'POST /v2/topics/{topicKey}/subscriptions': [
    {
      subscriberIds: [USER],
      subscriptions: ['sec_user_2', { subscriberId: 'sec_user_3', identifier: 'x' }],
      name: 'n',
    },
  ],
  'POST /v1/contacts/{userId}/digests/{type}/flush': [{}, { key: 't1' }],
  'POST /v1/inbox/items/batch': [{ all: true, action: 'read' }],
  'POST /v1/inbox/items/{id}/{action}': [{}],
  'PUT /v1/templates/{type}/config': [
    {
      channels: ['email', 'sms', 'push', 'chat', 'webhook'],
      priority: 'normal',
      category: 'billing',
      rateLimits: { sms: { limit: 3, windowSeconds: 86400 } },
      dedupeWindowSeconds: 86400,
      preferences: { default: 'opt-in', required: false },
      trackClicks: false,
    },
  ],
  'PUT /v1/templates/{type}/{channel}': [
    { parts: { subject: 'Due: {{ amount }}', text: 'Hi {{ name }}', html: '<p>Hi {{ name }}</p>' } },
  ],
  'POST /v1/templates/{type}/preview': [{ channel: 'email', data: { name: 'Ada' }, locale: 'en-GB' }],
  'POST /v1/webhooks/{provider}': [
    '[{"event":"delivered","email":"a@example.com","timestamp":1764316800,"deliveryId":"dlv_1"}]',
    'MessageSid=SM1&MessageStatus=delivered&To=%2B14155550123',
  ],
  'POST /u/{token}': ['List-Unsubscribe=One-Click', 'scope=channel'],
  'POST /dashboard/login': [`key=${ADMIN_KEY}`, 'key=wrong'],
  'POST /dashboard/logout': [''],
  'POST /dashboard/dead-letters/replay': ['channel=email', 'id=dlv_1&id=dlv_2'],
  'POST /dashboard/providers/{name}': ['enabled=on', 'enabled=off'],
};

// ---------------------------------------------------------------------------------------------
// Generators.

/** Path segments chosen to break parsers, routers, SQL and logs. */
const HOSTILE_SEGMENTS = [
  '',
  ' ',
  '.',
  '..',
  '../',
  '../../../etc/passwd',
  '..%2F..%2Fv1%2Fadmin%2Fproviders',
  '%2e%2e%2f',
  '%00',
  'a%00b',
  '\u0000',
  "' OR 1=1 --",
  '"; DROP TABLE contacts; --',
  '1 UNION SELECT * FROM contacts',
  '%2F',
  'a/b',
  '%252F',
  '%',
  '%zz',
  '?x=1',
  '#frag',
  '\u202eevil',
  '👩‍👩‍👧',
  'ümlaut',
  '\ud800',
  '<script>alert(1)</script>',
  '{{ 7 | times: 7 }}',
  '__proto__',
  'constructor',
  'prototype',
  'null',
  'NaN',
  '-1',
  '1e309',
  'config',
  'preview',
  'sandbox',
  'dlv_0',
  '\r\nX-Injected: 1',
  '*',
  'x'.repeat(129),
  'x'.repeat(5000),
];

const segmentValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 9000 }).map((n) => 'a'.repeat(n)) },
);

/** How the hostile value lands in the URL: encoded once, raw, or encoded twice. */
const encodedSegment = fc
  .tuple(segmentValue, fc.constantFrom('encoded', 'raw', 'double'))
  .map(([value, how]) => {
    try {
      if (how === 'encoded') return encodeURIComponent(value);
      if (how === 'double') return encodeURIComponent(encodeURIComponent(value));
    } catch {
      // A lone surrogate cannot be URI-encoded: send it raw and let the URL parser deal with it.
    }
    return value;
  });

const pathParam = (name: string) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(encodeURIComponent(VALID_PARAMS[name] ?? 'x')) },
    { weight: 2, arbitrary: encodedSegment },
  );

function pathFor(template: string): fc.Arbitrary<string> {
  const names = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
  if (names.length === 0) return fc.constant(template);
  return fc
    .tuple(...names.map(pathParam))
    .map((values) => names.reduce((path, name, i) => path.replace(`{${name}}`, values[i] ?? ''), template));
}

const QUERY_VALUES = [
  '-1',
  '0',
  '1',
  '100',
  '101',
  '1000000',
  '99999999999999999999',
  '1e309',
  'NaN',
  'Infinity',
  '-0',
  '0x10',
  '1.5',
  ' 1',
  '',
  'abc',
  '%00',
  "' OR 1=1 --",
  '[]',
  '{}',
  'x'.repeat(300),
  'email',
  'sent',
  'payment_reminder',
  '1h',
  '24h',
  '7d',
  'fr-CA',
  USER,
  btoa('NaN|x'),
  btoa('1|'),
  btoa(`${Date.now()}|${NOTIFICATION_ID}`),
  '!!!!',
  '=',
];

/** Standard base64 of the UTF-8 bytes: what a forged cursor looks like. */
const base64Of = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

const queryValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...QUERY_VALUES) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(base64Of) },
);

function queryFor(route: Route): fc.Arbitrary<string> {
  const names = [...route.queryParams, 'limit', 'cursor', 'window', 'unknown', '__proto__'];
  return fc.array(fc.tuple(fc.constantFrom(...names), queryValue), { maxLength: 4 }).map((pairs) => {
    if (pairs.length === 0) return '';
    const params = new URLSearchParams();
    for (const [name, value] of pairs) params.append(name, value);
    return `?${params}`;
  });
}

/** Header values as a Request accepts them: no NUL, CR or LF, Latin-1 only. */
const headerSafe = (s: string) => s.replace(/[\0\r\n]/g, '').replace(/[^\x20-\xff]/g, '?');

const AUTH_VARIANTS = [
  undefined,
  'Bearer',
  'Bearer ',
  `bearer ${ADMIN_KEY}`,
  `Bearer ${ADMIN_KEY} extra`,
  `Bearer  ${ADMIN_KEY}`,
  `Bearer ${ADMIN_KEY},Bearer other`,
  'Basic dGVzdDp0ZXN0',
  `Token ${ADMIN_KEY}`,
  'Bearer test-admin-kez',
  'Bearer hk_live_0000000000000000000000000000',
  `Bearer ${'x'.repeat(8000)}`,
  `Bearer ${ADMIN_KEY.toUpperCase()}`,
];

const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(`Bearer ${ADMIN_KEY}`) },
  { weight: 2, arbitrary: fc.constantFrom(...AUTH_VARIANTS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map(headerSafe) },
);

/** The inbox's client routes mostly get a valid end-user token (minted in beforeAll). */
const INBOX_AUTH = '\u0000inbox-token';
let inboxToken = '';
const inboxAuthorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(INBOX_AUTH) },
  { weight: 2, arbitrary: fc.constantFrom(...AUTH_VARIANTS) },
  { weight: 1, arbitrary: fc.constant<string | undefined>(`Bearer ${ADMIN_KEY}`) },
);

const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'application/jsonx',
  'application/json, text/plain',
  '',
  ';',
  '*/*',
  'application/problem+json',
];

const contentType = (preferred: string) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant<string | undefined>(preferred) },
    { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  );

const EXTRA_HEADER_NAMES = [
  'X-Request-Id',
  'X-Forwarded-For',
  'X-Forwarded-Host',
  'Origin',
  'Cookie',
  'X-HTTP-Method-Override',
  'Accept',
  'Accept-Encoding',
  'Content-Encoding',
  'X-Original-URL',
  'Referer',
  'CF-Connecting-IP',
];

const extraHeader = fc.tuple(
  fc.constantFrom(...EXTRA_HEADER_NAMES),
  fc.oneof(
    fc.string({ maxLength: 100 }).map(headerSafe),
    fc.constantFrom('gzip', 'null', 'https://evil.example', 'DELETE', '../admin', 'x'.repeat(32 * KB)),
  ),
);

/** The raw JSON text a field is replaced with: wrong types, edge numbers, hostile strings. */
const WRONG_VALUES = [
  'null',
  'true',
  'false',
  '0',
  '-1',
  '1.5',
  '-0',
  '1e309',
  '-1e309',
  '1e-400',
  '123456789012345678901234567890',
  '9007199254740993',
  '""',
  '" "',
  '"x"',
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\ud800"',
  '"\\ufeff"',
  '"👩‍👩‍👧"',
  '"\\u202eevil"',
  '"<script>alert(1)</script>"',
  '"{{ 7 | times: 7 }}"',
  '"{% raw %}"',
  '"\' OR 1=1 --"',
  '"../../etc/passwd"',
  '"http://127.0.0.1/"',
  '"http://169.254.169.254/latest/meta-data/"',
  '"https://[::ffff:10.0.0.1]/"',
  '"javascript:alert(1)"',
  '[]',
  '{}',
  '[null]',
  '[[]]',
  `{"__proto__":{"${POLLUTION_KEY}":true}}`,
  `{"constructor":{"prototype":{"${POLLUTION_KEY}":true}}}`,
  JSON.stringify('x'.repeat(5000)),
  `[${Array(2000).fill('1').join(',')}]`,
  `${'['.repeat(1000)}${']'.repeat(1000)}`,
];

const wrongValue = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...WRONG_VALUES) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map((s) => JSON.stringify(s)) },
);

type Step = string | number;

/** Every node of a JSON value (except the root), as paths. */
function nodePaths(value: Json, prefix: Step[] = []): Step[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [Step, Json][] = Array.isArray(value)
    ? value.map((v, i): [Step, Json] => [i, v])
    : Object.entries(value);
  return entries.flatMap(([key, child]) => [[...prefix, key], ...nodePaths(child, [...prefix, key])]);
}

const RAW = '@@RAW_JSON@@';

/** `value` with the node at `path` replaced by raw JSON text (which JSON.stringify could not emit). */
function withRaw(value: Json, path: Step[], raw: string): string {
  const copy = structuredClone(value);
  let parent = copy as Record<Step, Json>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<Step, Json>;
  parent[path.at(-1) as Step] = RAW;
  return JSON.stringify(copy).replace(JSON.stringify(RAW), raw);
}

/** `value` with the key at `path` renamed (or the array element removed). */
function renamed(value: Json, path: Step[], newKey: string | null): string {
  const copy = structuredClone(value);
  let parent = copy as Record<Step, Json>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<Step, Json>;
  const last = path.at(-1) as Step;
  if (Array.isArray(parent)) {
    parent.splice(Number(last), 1);
    return JSON.stringify(copy);
  }
  const moved = parent[last] as Json;
  delete parent[last];
  if (newKey === null) return JSON.stringify(copy);
  // Written as text so `__proto__` is a real key in the JSON, as an attacker would send it.
  parent[RAW] = moved;
  return JSON.stringify(copy).replace(JSON.stringify(RAW), JSON.stringify(newKey));
}

/** A string leaf padded so the whole body is `target` bytes (close to, at, or over the limit). */
function padded(value: Json, target: number): string {
  const base = JSON.stringify(value);
  const stringPath = nodePaths(value).find((path) => {
    let node: Json = value;
    for (const step of path) node = (node as Record<Step, Json>)[step] as Json;
    return typeof node === 'string';
  });
  if (!stringPath) return base + ' '.repeat(Math.max(0, target - base.length));
  let node: Json = value;
  for (const step of stringPath) node = (node as Record<Step, Json>)[step] as Json;
  const current = node as string;
  const extra = Math.max(0, target - new TextEncoder().encode(base).length);
  return withRaw(value, stringPath, JSON.stringify(current + 'x'.repeat(extra)));
}

function jsonBodyFor(samples: Json[]): fc.Arbitrary<string> {
  const sample = fc.constantFrom(...samples);
  const mutation = sample.chain((valid) => {
    const paths = nodePaths(valid);
    if (paths.length === 0) return fc.constant(JSON.stringify(valid));
    const path = fc.constantFrom(...paths);
    return fc.oneof(
      { weight: 6, arbitrary: fc.tuple(path, wrongValue).map(([p, raw]) => withRaw(valid, p, raw)) },
      { weight: 1, arbitrary: path.map((p) => renamed(valid, p, null)) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(path, fc.constantFrom('__proto__', 'constructor', 'prototype', 'unknownField', ''))
          .map(([p, key]) => renamed(valid, p, key)),
      },
    );
  });
  return fc.oneof(
    { weight: 3, arbitrary: sample.map((v) => JSON.stringify(v)) },
    { weight: 10, arbitrary: mutation },
    {
      weight: 1,
      arbitrary: sample.map((v) => `{"__proto__":{"${POLLUTION_KEY}":true},${JSON.stringify(v).slice(1)}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(sample, fc.nat())
        .map(([v, n]) => JSON.stringify(v).slice(0, n % JSON.stringify(v).length)),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(sample, fc.oneof(fc.integer({ min: -64, max: 64 }), fc.constant(900 * KB)))
        .map(([v, delta]) => padded(v, delta > 64 ? delta : API_BODY_LIMIT + delta)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(100, 5000, 20_000, 45_000), fc.constantFrom('[', '{"a":'))
        .map(([depth, open]) => open.repeat(depth) + (open === '[' ? ']' : '}').repeat(depth)),
    },
    { weight: 1, arbitrary: fc.json() },
    { weight: 1, arbitrary: fc.anything().map((v) => JSON.stringify(v) ?? 'undefined') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', ' ', 'null', '[]', '"text"', '{', '}', '\u0000', '\ufeff{}'),
    },
  );
}

function rawBodyFor(samples: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...samples) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
    { weight: 1, arbitrary: fc.json() },
    {
      weight: 1,
      arbitrary: fc
        .dictionary(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 40 }), {
          maxKeys: 6,
        })
        .map((d) => new URLSearchParams(d).toString()),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '--xyz\r\nContent-Disposition: form-data; name="key"\r\n\r\nv\r\n--xyz--\r\n',
        '--xyz\r\nbroken',
        'x'.repeat(2 * KB * KB),
        'key=%E0%A4%A&enabled=on',
      ),
    },
  );
}

interface Case {
  method: string;
  url: string;
  headers: [string, string][];
  body?: string;
}

function describeCase(c: Case): string {
  const body =
    c.body === undefined
      ? '(none)'
      : c.body.length > 600
        ? `${JSON.stringify(c.body.slice(0, 600))}… (${c.body.length} chars)`
        : JSON.stringify(c.body);
  const headers = c.headers.map(
    ([n, v]) => `${n}: ${v.length > 120 ? `${v.slice(0, 120)}… (${v.length})` : v}`,
  );
  return `${c.method} ${c.url.length > 400 ? `${c.url.slice(0, 400)}…` : c.url}\n  headers: ${headers.join(' | ') || '(none)'}\n  body: ${body}`;
}

let sessionCookie = '';

function caseFor(route: Route): fc.Arbitrary<Case> {
  const samples = VALID_BODIES[routeKey(route)] ?? [];
  const jsonApi = isJsonApi(route.template);
  const dashboard = route.template.startsWith('/dashboard');
  const jsonSamples = samples.filter((s): s is Json => typeof s !== 'string');
  const rawSamples = samples.filter((s): s is string => typeof s === 'string');
  const body: fc.Arbitrary<string | undefined> = !takesBody(route)
    ? fc.constant(undefined)
    : jsonSamples.length > 0
      ? jsonBodyFor(jsonSamples)
      : rawBodyFor(rawSamples.length > 0 ? rawSamples : ['']);
  const preferredType = jsonApi ? 'application/json' : 'application/x-www-form-urlencoded';
  return fc
    .record({
      path: pathFor(route.template),
      query: queryFor(route),
      auth: INBOX_CLIENT.test(route.template) ? inboxAuthorization : authorization,
      type: contentType(preferredType),
      session: fc.boolean(),
      sameOrigin: fc.oneof(
        { weight: 4, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
      extra: fc.option(extraHeader, { freq: 3 }),
      body,
    })
    .map(({ path, query, auth, type, session, sameOrigin, extra, body: text }) => {
      const headers: [string, string][] = [];
      if (auth !== undefined)
        headers.push(['Authorization', auth === INBOX_AUTH ? `Bearer ${inboxToken}` : auth]);
      if (text !== undefined && type !== undefined) headers.push(['Content-Type', type]);
      if (dashboard && (session || route.template !== '/dashboard/login'))
        headers.push(['Cookie', sessionCookie]);
      if (dashboard && sameOrigin) headers.push(['Origin', 'https://herald.test']);
      if (extra) headers.push(extra);
      return { method: route.method, url: `https://herald.test${path}${query}`, headers, body: text };
    });
}

// ---------------------------------------------------------------------------------------------
// The property.

async function dispatch(request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, ENV, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function toRequest(c: Case): Request | null {
  try {
    return new Request(c.url, { method: c.method, headers: c.headers, body: c.body });
  } catch {
    return null; // not something a client could send (a header value Request refuses)
  }
}

/** What is wrong with this answer to this request; empty when it keeps every promise. */
async function problems(request: Request, response: Response): Promise<string[]> {
  const found: string[] = [];
  const path = new URL(request.url).pathname;
  const status = response.status;
  const type = response.headers.get('Content-Type') ?? '';
  // Binary bodies (the pixel) are read as bytes: only text can hold an envelope or a secret.
  let text = '';
  if (request.method !== 'HEAD') {
    if (type.startsWith('image/')) await response.arrayBuffer();
    else text = await response.text();
  }
  const htmlPages = path.startsWith('/u/') || path === '/dashboard' || path.startsWith('/dashboard/');

  if (status >= 500) found.push(`answered ${status}`);
  if (/^\/t\/o\/[^/]+$/.test(path) && request.method === 'GET') {
    if (status !== 200 || type !== 'image/gif') found.push(`the pixel answered ${status} ${type}`);
  } else if (status >= 300 && status < 400) {
    const redirects = path.startsWith('/t/c/') || path === '/dashboard' || path.startsWith('/dashboard/');
    if (!redirects) found.push(`unexpected redirect ${status}`);
    if (!response.headers.get('Location')) found.push(`${status} without Location`);
  } else if (status >= 400 && status < 500 && request.method !== 'HEAD') {
    // The pages answer errors as HTML; the JSON envelope (say, a 422 on a malformed path) is fine too.
    if (!(htmlPages && type.startsWith('text/html'))) {
      let envelope: { error?: { code?: unknown; message?: unknown } } | undefined;
      try {
        envelope = JSON.parse(text);
      } catch {
        found.push(`${status} body is not JSON: ${text.slice(0, 200)}`);
      }
      if (
        envelope &&
        (typeof envelope.error?.code !== 'string' || typeof envelope.error?.message !== 'string')
      )
        found.push(`${status} body is not the error envelope: ${text.slice(0, 200)}`);
      if (!type.startsWith('application/json')) found.push(`${status} Content-Type is ${type}`);
    }
  }
  for (const secret of SECRETS) if (secret && text.includes(secret)) found.push('the body contains a secret');
  if (Object.hasOwn(Object.prototype, POLLUTION_KEY) || ({} as Record<string, unknown>)[POLLUTION_KEY])
    found.push('Object.prototype was polluted');
  return found;
}

/** Our tracking and unsubscribe tokens are forged by construction, so those routes must not write. */
const mustNotWrite = (path: string, status: number) =>
  status >= 400 || path.startsWith('/t/') || path.startsWith('/u/');

async function checkCase(c: Case): Promise<void> {
  const request = toRequest(c);
  fc.pre(request !== null);
  if (!request) return;
  const before = await storageSnapshot(ENV);
  const logs: string[] = [];
  const spies = (['log', 'info', 'warn', 'error'] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logs.push(args.map(String).join(' '));
    }),
  );
  let response: Response;
  try {
    response = await dispatch(request);
  } catch (error) {
    throw new Error(`the Worker threw (${String(error)}) for\n${describeCase(c)}\nlogs:\n${logs.join('\n')}`);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  const found = await problems(request, response);
  const after = await storageSnapshot(ENV);
  if (mustNotWrite(new URL(request.url).pathname, response.status)) {
    const changes = snapshotChanges(before, after);
    if (changes.length > 0)
      found.push(`a rejected request (${response.status}) wrote: ${changes.join('; ')}`);
  }
  for (const value of [...SECRETS, ...PERSONAL_DATA])
    if (logs.some((line) => line.includes(value))) found.push(`a log line contains ${JSON.stringify(value)}`);
  if (found.length > 0)
    throw new Error(`${found.join('\n')}\nfor\n${describeCase(c)}\nlogs:\n${logs.join('\n') || '(none)'}`);
}

beforeAll(async () => {
  const session = await signToken(
    String(testEnv.SIGNING_SECRET),
    SESSION_PURPOSE,
    { sub: 'admin' },
    { expiresAtMs: Date.now() + 3600_000 },
  );
  sessionCookie = `${SESSION_COOKIE}=${session}`;
  inboxToken = (
    await json<{ token: string }>(await api('POST', '/v1/inbox/tokens', { userId: USER }, { env: ENV }))
  ).token;
  // Something to read, update and delete, so valid ids reach the code past "not found".
  expect((await api('PUT', `/v1/contacts/${USER}`, CONTACT, { env: ENV })).status).toBe(200);
  expect((await api('POST', '/v1/notifications', NOTIFICATION, { env: ENV })).status).toBe(202);
  expect((await api('PUT', '/v1/topics/sec_topic_1', {}, { env: ENV })).status).toBeLessThan(300);
});

describe('route inventory', () => {
  it('covers the API, the public endpoints and the dashboard', () => {
    const keys = ROUTES.map(routeKey);
    for (const expected of [
      'GET /healthz',
      'GET /openapi.json',
      'GET /metrics',
      'GET /t/o/{token}',
      'GET /t/c/{token}',
      'GET /u/{token}',
      'POST /u/{token}',
      'POST /v1/webhooks/{provider}',
      'POST /v1/notifications',
      'PUT /v1/contacts/{userId}',
      'POST /dashboard/login',
    ]) {
      expect(keys).toContain(expected);
    }
  });

  it('has a valid body sample for every route that takes a body, and a valid value for every path parameter', () => {
    const missingBodies = ROUTES.filter((r) => takesBody(r) && !VALID_BODIES[routeKey(r)]).map(routeKey);
    expect(missingBodies, 'add a valid sample to VALID_BODIES').toEqual([]);
    const params = new Set(ROUTES.flatMap((r) => [...r.template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])));
    expect(
      [...params].filter((p) => p && !VALID_PARAMS[p]),
      'add a value to VALID_PARAMS',
    ).toEqual([]);
  });

  it('every valid body sample is accepted as it stands, so mutations start from a valid request', async () => {
    for (const [key, samples] of Object.entries(VALID_BODIES)) {
      const [method = '', template = ''] = key.split(' ');
      // The inbox's client routes take an end user's token, not a key: test/inbox sends them valid ones.
      if (!isJsonApi(template) || INBOX_CLIENT.test(template)) continue;
      const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => VALID_PARAMS[name] ?? '');
      for (const sample of samples) {
        const res = await api(method, path, sample, { env: ENV });
        expect(res.status, `${key} ${await res.clone().text()}`).toBeLessThan(300);
      }
    }
  });
});

describe('the write detector', () => {
  it('sees an insert, an update, a delete and an R2 write, so "writes nothing" can fail', async () => {
    const base = await storageSnapshot(ENV);
    const userId = 'detector_user';
    await api('PUT', `/v1/contacts/${userId}`, { email: 'a@example.com' }, { env: ENV });
    const inserted = await storageSnapshot(ENV);
    expect(snapshotChanges(base, inserted).join()).toMatch(/contacts: \d+ → \d+ rows/);
    await api('PATCH', `/v1/contacts/${userId}`, { timezone: 'Europe/Paris' }, { env: ENV });
    const updated = await storageSnapshot(ENV);
    expect(snapshotChanges(inserted, updated)).toContain('contacts: rows changed (same count)');
    await api('DELETE', `/v1/contacts/${userId}`, undefined, { env: ENV });
    expect(snapshotChanges(updated, await storageSnapshot(ENV)).join()).toMatch(/contacts: \d+ → \d+ rows/);
    const beforePut = await storageSnapshot(ENV);
    await ENV.TEMPLATES.put('detector/probe.txt', 'x');
    expect(snapshotChanges(beforePut, await storageSnapshot(ENV))).toEqual([
      'R2 detector/probe.txt: created',
    ]);
    await ENV.TEMPLATES.delete('detector/probe.txt');
  });
});

describe('hostile input on every route: never a 5xx, always the envelope, a rejection writes nothing', () => {
  it.each(ROUTES.map((route) => [routeKey(route), route] as const))('%s', async (_name, route) => {
    await fc.assert(
      fc.asyncProperty(caseFor(route), (c) => checkCase(c)),
      { seed: SEED, numRuns: takesBody(route) ? BODY_ROUTE_RUNS : OTHER_ROUTE_RUNS, endOnFailure: true },
    );
  });

  it('any method on any route path: 404/405 in the envelope or a page, never a 5xx', async () => {
    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'];
    const anyMethod = fc
      .tuple(fc.constantFrom(...ROUTES), fc.constantFrom(...methods))
      .chain(([route, method]) =>
        caseFor(route).map(
          (c): Case => ({
            ...c,
            method,
            body: ['GET', 'HEAD', 'OPTIONS'].includes(method) ? undefined : (c.body ?? '{}'),
          }),
        ),
      );
    await fc.assert(
      fc.asyncProperty(anyMethod, (c) => checkCase(c)),
      { seed: SEED, numRuns: 40, endOnFailure: true },
    );
  });
});
