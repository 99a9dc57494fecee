import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueueMessage } from '../../src/queue/messages';
import { providerRegistry } from '../../src/services/container';
import { ADMIN_KEY, api, json, testEnv, uniqueUser } from '../helpers/api';
import { fakeFetch } from '../helpers/fetch';
import { type CapturingQueue, envWithCapturedQueues, runConsumer } from '../helpers/queues';
import { databasesOfEnv, tableNames } from '../helpers/row-counts';
import { rsaPrivateKeyPem } from '../providers/push/helpers';

/**
 * Logs never carry personal data or secrets, and error answers never echo a secret. A contact
 * with distinctive values goes through ingest and every channel's consumer, with providers that
 * fail and echo the address back in their error bodies (as real ones do), through retries, the
 * dead-letter queue and a forged provider callback; then every captured console line is searched
 * for the values and for recognisable fragments of them.
 */

const EMAIL = 'zelda.pii7c1e@example.org';
const PHONE = '+14155559876';
const FCM = `fcmpii${'z'.repeat(30)}:APA91b${'P'.repeat(120)}`;
const SLACK = 'https://hooks.slack.com/services/T0PII0001/B0PII0002/piiSlackSecret0003';
const HOOK_URL = 'https://hooks.example.org/herald/piiHookPath0004';
const HOOK_SECRET = `whsec_${btoa('pii-endpoint-secret-0005')}`;

const PROVIDER_SECRETS = {
  RESEND_API_KEY: 're_piiSecretResendKey0006',
  TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
  TWILIO_AUTH_TOKEN: 'piiSecretTwilioToken0007',
  WEBHOOK_SIGNING_SECRET: `whsec_${btoa('pii-default-webhook-secret-0008')}`,
  SENDGRID_WEBHOOK_PUBLIC_KEY:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==',
};

/** Values and fragments that identify a person: the redactor must not let any of them through. */
const PERSONAL = [
  EMAIL,
  'zelda.pii7c1e',
  PHONE,
  PHONE.slice(1),
  '415555987',
  FCM,
  FCM.slice(0, 40),
  'P'.repeat(40),
  SLACK,
  'piiSlackSecret0003',
  'T0PII0001/B0PII0002',
  HOOK_URL,
  'piiHookPath0004',
  HOOK_SECRET,
  btoa('pii-endpoint-secret-0005'),
];

let privateKeyPem = '';

/** Above every channel's MAX_ATTEMPTS (src/domain/retry.ts). */
const MAX_REDELIVERIES = 12;

function secretValues(): string[] {
  const encryptionKeys = String(testEnv.DATA_ENCRYPTION_KEY ?? '')
    .split(',')
    .map((entry) => entry.split(':')[1] ?? '')
    .filter((key) => key.length > 0);
  const pemBody = privateKeyPem.split('\n').slice(1, -2).join('');
  return [
    ADMIN_KEY,
    String(testEnv.SIGNING_SECRET),
    ...encryptionKeys,
    PROVIDER_SECRETS.RESEND_API_KEY,
    PROVIDER_SECRETS.TWILIO_AUTH_TOKEN,
    PROVIDER_SECRETS.WEBHOOK_SIGNING_SECRET,
    btoa('pii-default-webhook-secret-0008'),
    pemBody.slice(100, 160),
    'ya29.piiAccessToken0009',
  ].filter((value) => value.length > 0);
}

/** Records every console line from now until the mocks are restored. */
function captureConsole(): string[] {
  const captured: string[] = [];
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      captured.push(
        args.map((a) => (typeof a === 'string' ? a : (JSON.stringify(a) ?? String(a)))).join(' '),
      );
    });
  }
  return captured;
}

let lines: string[] = [];
beforeEach(() => {
  lines = captureConsole();
});
afterEach(() => vi.restoreAllMocks());

function leaks(text: string, values: readonly string[]): string[] {
  return values.filter((value) => text.includes(value));
}

/** Every status a provider failure can leave a delivery in, read through the API. */
async function statuses(env: ReturnType<typeof envWithCapturedQueues>['env'], id: string) {
  const got = await json<{ deliveries: { channel: string; status: string; reason: string | null }[] }>(
    await api('GET', `/v1/notifications/${id}`, undefined, { env }),
  );
  return Object.fromEntries(got.deliveries.map((d) => [d.channel, d.status]));
}

const bodiesOf = (queue: CapturingQueue): QueueMessage[] => queue.sent.map((m) => m.body);

/** What the failing-provider run leaves behind: every log line, and a D1 export. */
interface RunTrace {
  logs: string[];
  export: string;
}

/**
 * One run through every failure path: a contact with distinctive values, a notification on all
 * five channels, each provider failing with the address echoed, redelivery until attempts are
 * spent, the dead-letter consumer, and a forged provider callback naming the address.
 */
async function failingProviderRun(): Promise<RunTrace> {
  const logs = captureConsole();
  try {
    return { logs, export: await failEverywhere() };
  } finally {
    vi.restoreAllMocks();
  }
}

async function failEverywhere(): Promise<string> {
  privateKeyPem = await rsaPrivateKeyPem();
  const captured = envWithCapturedQueues({
    ...PROVIDER_SECRETS,
    EMAIL_PROVIDERS: 'resend',
    EMAIL_FROM: 'Herald <noreply@example.com>',
    SMS_PROVIDERS: 'twilio',
    TWILIO_FROM: '+15005550006',
    PUSH_PROVIDERS: 'fcm',
    FCM_SERVICE_ACCOUNT: JSON.stringify({
      type: 'service_account',
      project_id: 'herald-pii-test',
      client_email: 'herald@herald-pii-test.iam.gserviceaccount.com',
      private_key: privateKeyPem,
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
    CHAT_PROVIDERS: 'slack',
    WEBHOOK_PROVIDERS: 'webhook',
  });
  const { env } = captured;
  const userId = uniqueUser('pii');

  const put = await api(
    'PUT',
    `/v1/contacts/${userId}`,
    {
      email: EMAIL,
      phone: PHONE,
      deviceTokens: [{ deviceToken: FCM, platform: 'fcm' }],
      externalChannels: [
        { platform: 'slack', url: SLACK },
        { platform: 'webhook', url: HOOK_URL, secret: HOOK_SECRET },
      ],
    },
    { env },
  );
  expect(put.status).toBe(200);
  const sent = await api(
    'POST',
    '/v1/notifications',
    { type: 'payment_reminder', recipients: [userId], data: { amount: '42.00', name: 'Zelda' } },
    { env },
  );
  expect(sent.status).toBe(202);
  const accepted = await json<{ id: string; deliveries: { channel: string }[] }>(sent);
  expect(accepted.deliveries.map((d) => d.channel).sort()).toEqual([
    'chat',
    'email',
    'push',
    'sms',
    'webhook',
  ]);

  // Every provider fails, and each failure body repeats the address, as real providers do.
  const calls = fakeFetch((url) => {
    const host = new URL(url).host;
    if (host === 'api.resend.com')
      return Response.json(
        { name: 'internal_server_error', message: `mailbox ${EMAIL} is unavailable` },
        { status: 503, headers: { 'Retry-After': '30' } },
      );
    if (host === 'api.twilio.com')
      return Response.json(
        { code: 21211, message: `The 'To' number ${PHONE} is not a valid phone number.`, status: 400 },
        { status: 400 },
      );
    if (host === 'oauth2.googleapis.com')
      return Response.json({
        access_token: 'ya29.piiAccessToken0009',
        expires_in: 3599,
        token_type: 'Bearer',
      });
    if (host === 'fcm.googleapis.com')
      return Response.json(
        {
          error: {
            code: 404,
            message: `Requested entity ${FCM} was not found.`,
            status: 'NOT_FOUND',
            details: [
              { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' },
            ],
          },
        },
        { status: 404 },
      );
    if (host === 'hooks.slack.com') return new Response(`invalid_token for ${SLACK}`, { status: 500 });
    return new Response(`endpoint ${HOOK_URL} refused signature ${HOOK_SECRET}`, { status: 500 });
  });

  for (const channel of ['email', 'sms', 'push', 'chat', 'webhook'] as const) {
    const bodies = bodiesOf(captured.queues[channel]);
    expect(bodies.length, `${channel} enqueued`).toBeGreaterThan(0);
    // Redelivered until its attempts are spent: a retryable failure then goes to the
    // dead-letter queue, and the dead-letter consumer ends it.
    for (let attempt = 1; attempt <= MAX_REDELIVERIES; attempt += 1) {
      // Each redelivery stands for one after the retry delay, when the provider's circuit lets a
      // trial through again; without this, an open circuit would make the delivery wait instead.
      for (const name of ['resend', 'twilio', 'fcm', 'slack', 'webhook'])
        providerRegistry.breaker.success(`${channel}:${name}`);
      await runConsumer(env, `herald-${channel}`, bodies, attempt);
      if ((await statuses(env, accepted.id))[channel] !== 'queued') break;
    }
    const dead = bodiesOf(captured.dlqs[channel]);
    if (dead.length > 0) await runConsumer(env, `herald-${channel}-dlq`, dead);
  }
  const hosts = new Set(calls.map((c) => new URL(c.url).host));
  for (const host of [
    'api.resend.com',
    'api.twilio.com',
    'fcm.googleapis.com',
    'hooks.slack.com',
    'hooks.example.org',
  ])
    expect(hosts, `${host} was called`).toContain(host);
  const final = await statuses(env, accepted.id);
  expect(
    Object.values(final).every((s) => s === 'failed'),
    JSON.stringify(final),
  ).toBe(true);
  expect(
    captured.dlqs.email.sent.length,
    'the retryable email went to the dead-letter queue',
  ).toBeGreaterThan(0);

  // A forged SendGrid callback naming the address: refused, and logged without it.
  const forged = await api(
    'POST',
    '/v1/webhooks/sendgrid',
    JSON.stringify([{ event: 'bounce', email: EMAIL, reason: `550 ${EMAIL} unknown`, deliveryId: 'dlv_1' }]),
    {
      env,
      key: null,
      headers: {
        'Content-Type': 'application/json',
        'X-Twilio-Email-Event-Webhook-Signature': 'MEUCIQ==',
        'X-Twilio-Email-Event-Webhook-Timestamp': String(Math.floor(Date.now() / 1000)),
      },
    },
  );
  expect(forged.status).toBe(401);
  return d1Export();
}

/** Every row of every Herald table of every database (home and shards), as `wrangler d1 export` would hold them. */
async function d1Export(): Promise<string> {
  const parts: string[] = [];
  for (const [name, db] of databasesOfEnv(testEnv)) {
    for (const table of await tableNames(db)) {
      const { results } = await db.prepare(`SELECT * FROM "${table}"`).all();
      parts.push(`${name}.${table}: ${JSON.stringify(results)}`);
    }
  }
  return parts.join('\n');
}

/** The lines (or export rows) holding any of `values`, for the failure message. */
const offending = (text: string, values: readonly string[]) =>
  text
    .split('\n')
    .flatMap((line) => {
      const found = leaks(line, values);
      if (found.length === 0) return [];
      const at = line.indexOf(found[0] as string);
      return [`${JSON.stringify(found)} in …${line.slice(Math.max(0, at - 300), at + 200)}…`];
    })
    .join('\n');

describe('every failure path: a provider echoing the address, retries, dead letters, a forged callback', () => {
  let trace: RunTrace;
  beforeAll(async () => {
    trace = await failingProviderRun();
  });

  it('logs something, so the checks below have lines to search', () => {
    expect(trace.logs).toContainEqual(expect.stringContaining('"event":"delivery.dead_lettered"'));
    expect(trace.logs).toContainEqual(expect.stringContaining('"event":"callback.refused"'));
  });

  it('no log line holds the email, phone, device token, chat URL or endpoint secret', () => {
    const text = trace.logs.join('\n');
    expect(leaks(text, PERSONAL), offending(text, PERSONAL)).toEqual([]);
  });

  it('no log line holds the admin key, the signing or encryption keys, or a provider credential', () => {
    const text = trace.logs.join('\n');
    expect(leaks(text, secretValues()), offending(text, secretValues())).toEqual([]);
  });

  it('a D1 export holds none of them in clear either, although providers echoed them', () => {
    expect(leaks(trace.export, PERSONAL), offending(trace.export, PERSONAL)).toEqual([]);
  });
});

describe('logs of a rejected contact', () => {
  it('a contact rejected for invalid fields is not logged, and the 422 does not echo other fields', async () => {
    const res = await api('PUT', `/v1/contacts/${uniqueUser('pii')}`, {
      email: EMAIL,
      phone: PHONE,
      externalChannels: [{ platform: 'slack', url: 'http://169.254.169.254/latest/meta-data/' }],
    });
    expect(res.status).toBe(422);
    const text = await res.text();
    expect(leaks(text, [EMAIL, PHONE])).toEqual([]);
    expect(leaks(lines.join('\n'), PERSONAL)).toEqual([]);
  });
});

describe('error answers never echo secrets', () => {
  it('a wrong, truncated or extended admin key is refused without repeating it or the real one', async () => {
    for (const presented of [
      `${ADMIN_KEY}x`,
      ADMIN_KEY.slice(0, -1),
      `${ADMIN_KEY} ${ADMIN_KEY}`,
      `x${ADMIN_KEY}`,
    ]) {
      const res = await api('GET', '/v1/notifications', undefined, { key: presented });
      expect(res.status, presented).toBe(401);
      const text = `${await res.text()} ${[...res.headers.values()].join(' ')}`;
      expect(text).not.toContain(ADMIN_KEY);
      expect(text).not.toContain(presented);
    }
    expect(leaks(lines.join('\n'), [ADMIN_KEY])).toEqual([]);
  });

  it('the provider status page names missing or invalid credentials, never their values', async () => {
    const malformed = {
      EMAIL_PROVIDERS: 'resend,sendgrid,postmark,ses',
      SMS_PROVIDERS: 'twilio',
      PUSH_PROVIDERS: 'apns,fcm,webpush',
      CHAT_PROVIDERS: 'telegram',
      WEBHOOK_PROVIDERS: 'webhook',
      RESEND_API_KEY: 're_piiSecretResendKey0006',
      SENDGRID_API_KEY: 'SG.piiSecretSendgrid0010',
      TWILIO_AUTH_TOKEN: 'piiSecretTwilioToken0007',
      APNS_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\npiiSecretApnsKey0011\n-----END PRIVATE KEY-----',
      FCM_SERVICE_ACCOUNT: '{"private_key":"piiSecretFcmKey0012"',
      VAPID_PRIVATE_KEY: 'piiSecretVapidKey0013',
      TELEGRAM_BOT_TOKEN: '123456:piiSecretTelegram0014',
      WEBHOOK_SIGNING_SECRET: 'whsec_piiSecretNotBase64!!0015',
      AWS_SECRET_ACCESS_KEY: 'piiSecretAwsKey0016',
    };
    const { env } = envWithCapturedQueues(malformed);
    const res = await api('GET', '/v1/admin/providers', undefined, { env });
    expect(res.status).toBe(200);
    const body = await res.text();
    const values = Object.entries(malformed)
      .filter(([name]) => !name.endsWith('_PROVIDERS'))
      .map(([, value]) => value);
    expect(leaks(body, values)).toEqual([]);
    for (const fragment of ['piiSecretFcmKey0012', 'piiSecretApnsKey0011', 'piiSecretNotBase64'])
      expect(body).not.toContain(fragment);
    // The page still says what is wrong, so an operator can fix it.
    expect(body).toMatch(/missing: |invalid: /);
  });
});
