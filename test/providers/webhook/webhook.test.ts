import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { MissingCredentialsError } from '../../../src/providers/types';
import { webhookProviders } from '../../../src/providers/webhook';
import { WEBHOOK_TIMEOUT_MS, webhook, webhookConfigFromEnv } from '../../../src/providers/webhook/webhook';
import {
  depsWith,
  expectOutcome,
  FIXED_NOW,
  failingFetch,
  type Outcome,
  recordingFetch,
  sendRequest,
  timeoutError,
} from '../chat/harness';

/** Test-only secrets in the Standard Webhooks format: whsec_ + base64 of random bytes. */
function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

const GLOBAL_SECRET = randomSecret();
const ENV = { WEBHOOK_SIGNING_SECRET: GLOBAL_SECRET, ENVIRONMENT: 'production' };
const PAYLOAD = { type: 'order.shipped', data: { orderId: 'ord_123', note: 'ünïcode ✓ "quoted"' } };

function address(url = 'https://hooks.example.com/herald', secret?: string): AddressOf<'webhook'> {
  return { channel: 'webhook', url, ...(secret ? { secret } : {}) };
}

async function deliver(
  env: Record<string, string>,
  to: AddressOf<'webhook'>,
  response = new Response(null, { status: 204 }),
  now?: () => number,
) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await webhook.create(env, depsWith(fetch, now)).send(sendRequest(to, { json: PAYLOAD }));
  return { result, calls };
}

function headersOf(request: Request): Record<string, string> {
  return Object.fromEntries(request.headers.entries());
}

describe('webhook request', () => {
  it('posts the JSON payload with Standard Webhooks headers', async () => {
    const { result, calls } = await deliver(ENV, address(), new Response('ok'), () => FIXED_NOW + 999);
    expectOutcome(result, { kind: 'sent' });
    const call = calls[0];
    expect(call?.request.url).toBe('https://hooks.example.com/herald');
    expect(call?.request.method).toBe('POST');
    expect(JSON.parse(call?.body ?? '')).toEqual(PAYLOAD);
    const headers = headersOf(call?.request as Request);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['user-agent']).toMatch(/^Herald-Webhooks\//);
    expect(headers['webhook-id']).toBe('dlv_01JTESTDELIVERY');
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(FIXED_NOW / 1000)));
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(call?.init?.redirect).toBe('manual');
    expect(call?.init?.signal).toBeInstanceOf(AbortSignal);
    expect(WEBHOOK_TIMEOUT_MS).toBe(15_000);
  });

  it('signs with the global secret, verified by the standardwebhooks library', async () => {
    const { calls } = await deliver(ENV, address(), undefined, () => Date.now());
    const call = calls[0];
    const verified = new Webhook(GLOBAL_SECRET).verify(call?.body ?? '', headersOf(call?.request as Request));
    expect(verified).toEqual(PAYLOAD);
  });

  it("signs with the endpoint's own secret when it has one", async () => {
    const endpointSecret = randomSecret();
    const { calls } = await deliver(ENV, address(undefined, endpointSecret), undefined, () => Date.now());
    const call = calls[0];
    const headers = headersOf(call?.request as Request);
    expect(new Webhook(endpointSecret).verify(call?.body ?? '', headers)).toEqual(PAYLOAD);
    expect(() => new Webhook(GLOBAL_SECRET).verify(call?.body ?? '', headers)).toThrow();
  });

  it('a tampered body fails verification (the check can fail)', async () => {
    const { calls } = await deliver(ENV, address(), undefined, () => Date.now());
    const call = calls[0];
    const tampered = (call?.body ?? '').replace('ord_123', 'ord_999');
    expect(() => new Webhook(GLOBAL_SECRET).verify(tampered, headersOf(call?.request as Request))).toThrow();
  });
});

const ANSWERS: [string, () => Response, Outcome][] = [
  ['200', () => new Response('ok'), { kind: 'sent' }],
  ['204', () => new Response(null, { status: 204 }), { kind: 'sent' }],
  ['202', () => new Response('queued', { status: 202 }), { kind: 'sent' }],
  [
    '301 redirect is not followed',
    () => new Response(null, { status: 301, headers: { location: 'http://10.0.0.1/' } }),
    { kind: 'permanent', code: '301' },
  ],
  [
    '307 redirect is not followed',
    () => new Response(null, { status: 307, headers: { location: 'https://x.example/' } }),
    { kind: 'permanent', code: '307' },
  ],
  ['400', () => new Response('bad', { status: 400 }), { kind: 'permanent', code: '400' }],
  ['401', () => new Response('no', { status: 401 }), { kind: 'permanent', code: '401' }],
  ['404', () => new Response('not found', { status: 404 }), { kind: 'permanent', code: '404' }],
  [
    '410 gone',
    () => new Response('gone', { status: 410 }),
    { kind: 'permanent', code: '410', invalidAddress: true },
  ],
  ['408', () => new Response('timeout', { status: 408 }), { kind: 'retryable', code: '408' }],
  [
    '429 with Retry-After',
    () => new Response('slow', { status: 429, headers: { 'retry-after': '120' } }),
    { kind: 'retryable', code: '429', retryAfterSeconds: 120 },
  ],
  [
    '503 with an HTTP-date Retry-After',
    () =>
      new Response('', {
        status: 503,
        headers: { 'retry-after': new Date(FIXED_NOW + 30_000).toUTCString() },
      }),
    { kind: 'retryable', code: '503', retryAfterSeconds: 30 },
  ],
  ['500', () => new Response('boom', { status: 500 }), { kind: 'retryable', code: '500' }],
];

describe('webhook answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await deliver(ENV, address(), response());
    expectOutcome(result, expected);
  });

  it.each([
    [
      'network error naming the URL',
      new TypeError('Fetch failed: https://hooks.example.com/herald?token=s3cret'),
      /network error/,
    ],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable and never echoes the URL', async (_name, error, reason) => {
    const to = address('https://hooks.example.com/herald?token=s3cret');
    const result = await webhook
      .create(ENV, depsWith(failingFetch(error)))
      .send(sendRequest(to, { json: PAYLOAD }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(result.kind === 'retryable' && result.reason).not.toContain('s3cret');
  });
});

describe('webhook guards', () => {
  it.each([
    ['private address', 'https://10.0.0.1/hook'],
    ['cloud metadata', 'https://169.254.169.254/latest/meta-data/'],
    ['plain http', 'http://hooks.example.com/hook'],
    ['loopback outside development', 'http://localhost:8787/hook'],
  ])('blocks %s without calling fetch', async (_name, url) => {
    const { result, calls } = await deliver(ENV, address(url));
    expect(calls).toHaveLength(0);
    expectOutcome(result, { kind: 'permanent', invalidAddress: true });
  });

  it("allows loopback only when ENVIRONMENT is exactly 'development'", async () => {
    const dev = await deliver({ ...ENV, ENVIRONMENT: 'development' }, address('http://localhost:8787/hook'));
    expectOutcome(dev.result, { kind: 'sent' });
    expect(dev.calls[0]?.request.url).toBe('http://localhost:8787/hook');
    const almost = await deliver(
      { ...ENV, ENVIRONMENT: 'Development ' },
      address('http://localhost:8787/hook'),
    );
    expect(almost.calls).toHaveLength(0);
  });

  it('rejects an endpoint secret that is not base64 as a configuration error', async () => {
    const { result, calls } = await deliver(ENV, address(undefined, 'whsec_not*base64!'));
    expect(calls).toHaveLength(0);
    expectOutcome(result, { kind: 'permanent', configError: true });
  });

  it('refuses a message without a json payload', async () => {
    const { fetch, calls } = recordingFetch(() => new Response('ok'));
    const result = await webhook
      .create(ENV, depsWith(fetch))
      .send(sendRequest(address(), { text: 'no json' }));
    expect(calls).toHaveLength(0);
    expect(result.kind).toBe('permanent');
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
