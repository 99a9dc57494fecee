import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { toBase64 } from '../../../src/lib/encoding';
import { MissingCredentialsError } from '../../../src/providers/types';
import { webhookProviders } from '../../../src/providers/webhook';
import { WEBHOOK_LIMITS, webhook, webhookConfigFromEnv } from '../../../src/providers/webhook/webhook';
import {
  type AnswerRow,
  answerTable,
  deliveryOf,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  FIXED_NOW,
  networkRows,
  onlyCall,
  type ProviderCase,
  providerOn,
  type RecordedCall,
  refusalTable,
  sendOnce,
  textResponse,
} from '../harness';

/** Test-only secrets in the Standard Webhooks format: whsec_ + base64 of random bytes. */
function randomSecret(): string {
  return `whsec_${toBase64(crypto.getRandomValues(new Uint8Array(24)))}`;
}

const GLOBAL_SECRET = randomSecret();
const ENV = { WEBHOOK_SIGNING_SECRET: GLOBAL_SECRET, ENVIRONMENT: 'production' };
const PAYLOAD = { type: 'order.shipped', data: { orderId: 'ord_123', note: 'ünïcode ✓ "quoted"' } };
const URL_WITH_TOKEN = 'https://hooks.example.com/herald?token=s3cret';

function address(url = URL_WITH_TOKEN, secret?: string): AddressOf<'webhook'> {
  return { channel: 'webhook', url, ...(secret ? { secret } : {}) };
}

const delivery = (to = address(), json: unknown = PAYLOAD) => deliveryOf(to, { json });

function headersOf(call: RecordedCall): Record<string, string> {
  return Object.fromEntries(call.request.headers.entries());
}

/** Sends one delivery at the real time, so the standardwebhooks library accepts the timestamp. */
async function deliverNow(to: AddressOf<'webhook'>): Promise<RecordedCall> {
  return onlyCall(
    (await sendOnce(webhook, ENV, delivery(to), textResponse(204, null), () => Date.now())).calls,
  );
}

// Standard Webhooks: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
// `webhook-id` is the delivery id (a receiver drops a redelivery), the timestamp whole seconds.
const exactTo = (url: string, secret = GLOBAL_SECRET): ExactRequest => ({
  url,
  headers: {
    'content-type': 'application/json',
    'user-agent': 'Herald-Webhooks/1.0 (+https://www.standardwebhooks.com)',
    'webhook-id': 'dlv_01JTESTDELIVERY',
    'webhook-timestamp': String(Math.floor(FIXED_NOW / 1000)),
    'webhook-signature': /^v1,[A-Za-z0-9+/]+=*$/,
  },
  body: {
    check(call) {
      expect(JSON.parse(call.body)).toEqual(PAYLOAD);
      // The library's own signature over the exact bytes sent (its verify() would refuse FIXED_NOW as stale).
      const expected = new Webhook(secret).sign('dlv_01JTESTDELIVERY', new Date(FIXED_NOW), call.body);
      expect(headersOf(call)['webhook-signature']).toBe(expected);
    },
  },
});

const WEBHOOK: ProviderCase = {
  definition: webhook,
  env: () => ENV,
  request: () => delivery(),
  exact: () => [exactTo(URL_WITH_TOKEN)],
  secrets: () => ['s3cret'],
};

describe('webhook request', () => {
  it('is idempotent: webhook-id is the delivery id on every attempt, signed with it', async () => {
    expect(webhook.idempotent).toBe(true);
    const { provider, calls } = providerOn(
      webhook,
      ENV,
      () => textResponse(204, null),
      () => Date.now(),
    );
    expect(provider.idempotent).toBe(true);
    await provider.send(delivery());
    await provider.send(delivery());
    expect(calls.map((call) => headersOf(call)['webhook-id'])).toEqual([
      'dlv_01JTESTDELIVERY',
      'dlv_01JTESTDELIVERY',
    ]);
    for (const call of calls)
      expect(new Webhook(GLOBAL_SECRET).verify(call.body, headersOf(call))).toEqual(PAYLOAD);
  });

  it('signs with the global secret, verified by the standardwebhooks library', async () => {
    const call = await deliverNow(address());
    expect(new Webhook(GLOBAL_SECRET).verify(call.body, headersOf(call))).toEqual(PAYLOAD);
  });

  it("signs with the endpoint's own secret when it has one", async () => {
    const endpointSecret = randomSecret();
    const call = await deliverNow(address(undefined, endpointSecret));
    expect(new Webhook(endpointSecret).verify(call.body, headersOf(call))).toEqual(PAYLOAD);
    expect(() => new Webhook(GLOBAL_SECRET).verify(call.body, headersOf(call))).toThrow();
    const atFixedTime = await sendOnce(
      webhook,
      ENV,
      delivery(address(undefined, endpointSecret)),
      textResponse(200, 'ok'),
    );
    await expectRequest(onlyCall(atFixedTime.calls), exactTo(URL_WITH_TOKEN, endpointSecret));
  });

  it('a tampered body fails verification (the check can fail)', async () => {
    const call = await deliverNow(address());
    const tampered = call.body.replace('ord_123', 'ord_999');
    expect(() => new Webhook(GLOBAL_SECRET).verify(tampered, headersOf(call))).toThrow();
  });

  it("declares its limits: the endpoint is the customer's, so only the timeout and one recipient", () => {
    expect(webhook.limits).toBe(WEBHOOK_LIMITS);
    expect(WEBHOOK_LIMITS).toEqual({ timeoutMs: 15_000, recipientsPerRequest: 1, answerChars: 1024 });
  });
});

const ANSWERS: AnswerRow[] = [
  { name: '200', reply: textResponse(200, 'ok'), expected: { kind: 'sent' } },
  { name: '204', reply: textResponse(204, null), expected: { kind: 'sent' } },
  { name: '202', reply: textResponse(202, 'queued'), expected: { kind: 'sent' } },
  {
    name: '301 redirect is not followed',
    reply: textResponse(301, null, { location: 'http://10.0.0.1/' }),
    expected: {
      kind: 'permanent',
      code: '301',
      reason: 'endpoint answered 301 redirect (redirects are not followed)',
    },
  },
  {
    name: '307 redirect is not followed',
    reply: textResponse(307, null, { location: 'https://x.example/' }),
    expected: { kind: 'permanent', code: '307' },
  },
  {
    name: '400',
    reply: textResponse(400, 'bad \n  request'),
    expected: { kind: 'permanent', code: '400', reason: 'endpoint answered 400: bad request' },
  },
  { name: '401', reply: textResponse(401, 'no'), expected: { kind: 'permanent', code: '401' } },
  { name: '403', reply: textResponse(403, 'no'), expected: { kind: 'permanent', code: '403' } },
  { name: '404', reply: textResponse(404, 'not found'), expected: { kind: 'permanent', code: '404' } },
  {
    name: '410 gone',
    reply: textResponse(410, 'gone'),
    expected: { kind: 'permanent', code: '410', invalidAddress: true },
  },
  { name: '408', reply: textResponse(408, 'timeout'), expected: { kind: 'retryable', code: '408' } },
  {
    name: '429 with Retry-After',
    reply: textResponse(429, 'slow', { 'retry-after': '120' }),
    expected: { kind: 'retryable', code: '429', retryAfterSeconds: 120 },
  },
  {
    name: '503 with an HTTP-date Retry-After',
    reply: textResponse(503, '', { 'retry-after': new Date(FIXED_NOW + 30_000).toUTCString() }),
    expected: { kind: 'retryable', code: '503', retryAfterSeconds: 30, reason: 'endpoint answered 503' },
  },
  { name: '500', reply: textResponse(500, 'boom'), expected: { kind: 'retryable', code: '500' } },
  ...networkRows(URL_WITH_TOKEN),
];

describe('webhook answers', () => {
  answerTable(WEBHOOK, ANSWERS);
});

describe('webhook guards', () => {
  refusalTable(WEBHOOK, [
    ...[
      ['a private address', 'https://10.0.0.1/hook'],
      ['cloud metadata', 'https://169.254.169.254/latest/meta-data/'],
      ['plain http', 'http://hooks.example.com/hook'],
      ['loopback outside development', 'http://localhost:8787/hook'],
    ].map(([name, url]) => ({
      name: name as string,
      request: () => delivery(address(url)),
      expected: { kind: 'permanent', invalidAddress: true, reason: /^webhook url rejected: / } as const,
    })),
    {
      name: 'an endpoint secret that is not base64, as a configuration error',
      request: () => delivery(address(undefined, 'whsec_not*base64!')),
      expected: { kind: 'permanent', configError: true, reason: 'endpoint secret is not whsec_<base64>' },
    },
    {
      name: 'an endpoint secret in the url-safe alphabet, which receivers would decode to another key',
      request: () => delivery(address(undefined, 'whsec_abc-def_ghi')),
      expected: { kind: 'permanent', configError: true, reason: 'endpoint secret is not whsec_<base64>' },
    },
    {
      name: 'a message without a json payload',
      request: () => deliveryOf(address(), { text: 'no json' }),
      expected: { kind: 'permanent', reason: 'message has no json payload' },
    },
  ]);

  it("allows loopback only when ENVIRONMENT is exactly 'development'", async () => {
    const local = delivery(address('http://localhost:8787/hook'));
    const dev = await sendOnce(
      webhook,
      { ...ENV, ENVIRONMENT: 'development' },
      local,
      textResponse(204, null),
    );
    expectOutcome(dev.result, { kind: 'sent' });
    await expectRequest(onlyCall(dev.calls), exactTo('http://localhost:8787/hook'));
    const almost = await sendOnce(
      webhook,
      { ...ENV, ENVIRONMENT: 'Development ' },
      local,
      textResponse(204, null),
    );
    expect(almost.calls).toHaveLength(0);
  });
});

describe('webhook configuration', () => {
  it('requires WEBHOOK_SIGNING_SECRET', () => {
    expect(() => webhookConfigFromEnv({})).toThrow(MissingCredentialsError);
    expect(() => webhookConfigFromEnv({})).toThrow(/WEBHOOK_SIGNING_SECRET/);
  });

  it('rejects a signing secret that is not base64, naming only the variable', () => {
    expect(() => webhookConfigFromEnv({ WEBHOOK_SIGNING_SECRET: 'whsec_***' })).toThrow(
      /^WEBHOOK_SIGNING_SECRET must be/,
    );
  });

  it('is exported from the channel index', () => {
    expect(
      webhookProviders.map((definition) => [definition.name, definition.channel, definition.platforms]),
    ).toEqual([['webhook', 'webhook', ['webhook']]]);
  });
});
