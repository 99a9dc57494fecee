import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { apns, apnsConfigFromEnv } from '../../../src/providers/push/apns';
import { MissingCredentialsError, type Provider, type SendResult } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import { generateP256, jsonResponse, manualClock, pkcs8Pem, pushRequest, recordingFetch } from './helpers';

const TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let keys: CryptoKeyPair;
let env: Record<string, string>;

beforeAll(async () => {
  keys = await generateP256();
  env = {
    APNS_KEY_ID: 'ABC123DEFG',
    APNS_TEAM_ID: 'DEF123GHIJ',
    APNS_PRIVATE_KEY: await pkcs8Pem(keys.privateKey),
    APNS_TOPIC: 'com.example.app',
  };
});

const ok = () => new Response(null, { status: 200, headers: { 'apns-id': 'echoed-by-apple' } });

function setup(
  respond: (request: Request, index: number) => Response | Promise<Response> = ok,
  extraEnv: Record<string, string> = {},
) {
  const clock = manualClock();
  const recorder = recordingFetch(respond);
  const provider = apns.create(
    { ...env, ...extraEnv },
    { fetch: recorder.fetch, now: clock.now },
  ) as Provider;
  return { provider, clock, requests: recorder.requests };
}

async function bearerOf(request: Request): Promise<string> {
  const header = request.headers.get('authorization') ?? '';
  expect(header).toMatch(/^bearer /);
  return header.slice('bearer '.length);
}

describe('apns request', () => {
  it('posts the documented path, headers and payload', async () => {
    const { provider, clock, requests } = setup();
    const result = await provider.send(
      pushRequest('apns', TOKEN, {
        priority: 'high',
        message: {
          title: 'Shipped',
          body: 'Your order is on its way',
          url: 'https://shop.example/orders/42',
          json: { orderId: '42', count: 3, aps: { badge: 99 }, collapseId: 'order-42', ttlSeconds: 3600 },
        },
      }),
    );
    expect(result).toEqual({ kind: 'sent', providerMessageId: 'echoed-by-apple' });
    const [request] = requests;
    if (!request) throw new Error('no request');
    expect(request.url).toBe(`https://api.push.apple.com/3/device/${TOKEN}`);
    expect(request.method).toBe('POST');
    expect(request.headers.get('apns-topic')).toBe('com.example.app');
    expect(request.headers.get('apns-push-type')).toBe('alert');
    expect(request.headers.get('apns-priority')).toBe('10');
    expect(request.headers.get('apns-expiration')).toBe(String(Math.floor(clock.now() / 1000) + 3600));
    expect(request.headers.get('apns-collapse-id')).toBe('order-42');
    expect(request.headers.get('apns-id')).toBe('0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b');
    expect(await request.json()).toEqual({
      aps: { alert: { title: 'Shipped', body: 'Your order is on its way' }, sound: 'default' },
      orderId: '42',
      count: 3,
      url: 'https://shop.example/orders/42',
    });
  });

  it.each([
    ['critical', '10'],
    ['high', '10'],
    ['normal', '5'],
    ['low', '5'],
  ] as const)('priority %s sends apns-priority %s', async (priority, expected) => {
    const { provider, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN, { priority }));
    expect(requests[0]?.headers.get('apns-priority')).toBe(expected);
  });

  it('defaults to a one-day expiration and no collapse id', async () => {
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN));
    expect(requests[0]?.headers.get('apns-expiration')).toBe(String(Math.floor(clock.now() / 1000) + 86_400));
    expect(requests[0]?.headers.has('apns-collapse-id')).toBe(false);
  });

  it('hashes a collapse id longer than 64 bytes to 64 hex characters', async () => {
    const { provider, requests } = setup();
    await provider.send(
      pushRequest('apns', TOKEN, {
        message: { title: 't', body: 'b', json: { collapseId: 'é'.repeat(40) } },
      }),
    );
    expect(requests[0]?.headers.get('apns-collapse-id')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('lowercases an uppercase UUID delivery id for apns-id', async () => {
    const { provider, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'F47AC10B-58CC-4372-A567-0E02B2C3D479' }));
    expect(requests[0]?.headers.get('apns-id')).toBe('f47ac10b-58cc-4372-a567-0e02b2c3d479');
  });

  it('derives the same canonical UUID from a non-UUID delivery id on every retry', async () => {
    const { provider, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZX' }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZX' }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZY' }));
    const [first, retry, other] = requests.map((request) => request.headers.get('apns-id'));
    expect(first).toMatch(CANONICAL_UUID);
    expect(first?.[14]).toBe('8'); // RFC 9562 version 8
    expect('89ab').toContain(first?.[19]);
    expect(retry).toBe(first);
    expect(other).not.toBe(first);
  });

  it.each([
    [{}, 'https://api.push.apple.com'],
    [{ APNS_ENVIRONMENT: 'production' }, 'https://api.push.apple.com'],
    [{ APNS_ENVIRONMENT: 'sandbox' }, 'https://api.sandbox.push.apple.com'],
    [{ APNS_ENVIRONMENT: 'development' }, 'https://api.sandbox.push.apple.com'],
    [{ APNS_BASE_URL: 'http://localhost:8787/apns/' }, 'http://localhost:8787/apns'],
  ])('env %j posts to %s', async (extraEnv, base) => {
    const { provider, requests } = setup(ok, extraEnv);
    await provider.send(pushRequest('apns', TOKEN));
    expect(requests[0]?.url).toBe(`${base}/3/device/${TOKEN}`);
  });

  it('refuses an unknown APNS_ENVIRONMENT instead of guessing', () => {
    expect(() => apnsConfigFromEnv({ ...env, APNS_ENVIRONMENT: 'staging' })).toThrow(/APNS_ENVIRONMENT/);
  });

  it('rejects a device token that is not hex without calling APNs', async () => {
    const { provider, requests } = setup();
    const result = await provider.send(pushRequest('apns', '../../3/device/x'));
    expect(result).toMatchObject({ kind: 'permanent', invalidAddress: true, code: 'BadDeviceToken' });
    expect(requests).toHaveLength(0);
  });
});

describe('apns provider token', () => {
  it('is an ES256 JWT with kid, iss and iat that verifies with the public key', async () => {
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN));
    const jwt = await bearerOf(requests[0] as Request);
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', kid: 'ABC123DEFG' });
    const { payload } = await jwtVerify(jwt, keys.publicKey, { issuer: 'DEF123GHIJ', algorithms: ['ES256'] });
    expect(payload).toEqual({ iss: 'DEF123GHIJ', iat: Math.floor(clock.now() / 1000) });
  });

  it('accepts the key with escaped \\n newlines', async () => {
    const escaped = (env.APNS_PRIVATE_KEY as string).replace(/\n/g, '\\n');
    const { provider, requests } = setup(ok, { APNS_PRIVATE_KEY: escaped });
    expect(await provider.send(pushRequest('apns', TOKEN))).toMatchObject({ kind: 'sent' });
    await jwtVerify(await bearerOf(requests[0] as Request), keys.publicKey);
  });

  it('is reused for 40 minutes, then renewed', async () => {
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('apns', TOKEN));
    clock.advance(39 * 60_000);
    await provider.send(pushRequest('apns', TOKEN));
    clock.advance(2 * 60_000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second, third] = await Promise.all(requests.map(bearerOf));
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    const { payload } = await jwtVerify(third as string, keys.publicKey, {
      currentDate: new Date(clock.now()),
    });
    expect(payload.iat).toBe(Math.floor(clock.now() / 1000));
  });

  it('is signed once for concurrent sends', async () => {
    const { provider, requests } = setup();
    await Promise.all(Array.from({ length: 5 }, () => provider.send(pushRequest('apns', TOKEN))));
    const tokens = new Set(await Promise.all(requests.map(bearerOf)));
    expect(tokens.size).toBe(1);
  });

  it('is renewed after ExpiredProviderToken, which is retryable', async () => {
    const { provider, clock, requests } = setup((_, index) =>
      index === 0 ? jsonResponse(403, { reason: 'ExpiredProviderToken' }) : ok(),
    );
    expect(await provider.send(pushRequest('apns', TOKEN))).toMatchObject({
      kind: 'retryable',
      code: 'ExpiredProviderToken',
    });
    clock.advance(1000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second] = await Promise.all(requests.map(bearerOf));
    expect(second).not.toBe(first);
  });

  it('is kept after TooManyProviderTokenUpdates, which a new token would worsen', async () => {
    const { provider, clock, requests } = setup((_, index) =>
      index === 0 ? jsonResponse(429, { reason: 'TooManyProviderTokenUpdates' }) : ok(),
    );
    expect(await provider.send(pushRequest('apns', TOKEN))).toMatchObject({ kind: 'retryable' });
    clock.advance(1000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second] = await Promise.all(requests.map(bearerOf));
    expect(second).toBe(first);
  });

  it('reports an unusable key as a config error without calling APNs', async () => {
    const { provider, requests } = setup(ok, { APNS_PRIVATE_KEY: 'not a key' });
    expect(await provider.send(pushRequest('apns', TOKEN))).toMatchObject({
      kind: 'permanent',
      configError: true,
    });
    expect(requests).toHaveLength(0);
  });
});

type Expectation =
  | Partial<Extract<SendResult, { kind: 'permanent' }>>
  | Partial<Extract<SendResult, { kind: 'retryable' }>>;

/** The permanent flags set on a result, so a table row cannot pass with extra flags. */
const flags = (result: object) => ({
  invalidAddress: 'invalidAddress' in result && result.invalidAddress === true,
  configError: 'configError' in result && result.configError === true,
});

describe('apns responses', () => {
  const invalid = { kind: 'permanent', invalidAddress: true } as const;
  const config = { kind: 'permanent', configError: true } as const;
  const permanent = { kind: 'permanent' } as const;
  const retry = { kind: 'retryable' } as const;

  // Apple's documented reason strings, by status.
  it.each<[number, string, Expectation]>([
    [400, 'BadCollapseId', permanent],
    [400, 'BadDeviceToken', invalid],
    [400, 'BadExpirationDate', permanent],
    [400, 'BadMessageId', permanent],
    [400, 'BadPriority', permanent],
    [400, 'BadTopic', config],
    [400, 'DeviceTokenNotForTopic', invalid],
    [400, 'DuplicateHeaders', permanent],
    [400, 'IdleTimeout', retry],
    [400, 'InvalidPushType', permanent],
    [400, 'MissingDeviceToken', invalid],
    [400, 'MissingTopic', config],
    [400, 'PayloadEmpty', permanent],
    [400, 'TopicDisallowed', config],
    [403, 'BadCertificate', config],
    [403, 'BadCertificateEnvironment', config],
    [403, 'ExpiredProviderToken', retry],
    [403, 'Forbidden', config],
    [403, 'InvalidProviderToken', config],
    [403, 'MissingProviderToken', config],
    [403, 'UnrelatedKeyIdInToken', config],
    [403, 'BadEnvironmentKeyInToken', config],
    [404, 'BadPath', config],
    [405, 'MethodNotAllowed', config],
    [410, 'ExpiredToken', invalid],
    [410, 'Unregistered', invalid],
    [413, 'PayloadTooLarge', permanent],
    [429, 'TooManyProviderTokenUpdates', retry],
    [429, 'TooManyRequests', retry],
    [500, 'InternalServerError', retry],
    [503, 'ServiceUnavailable', retry],
    [503, 'Shutdown', retry],
  ])('%i %s', async (status, reason, expected) => {
    const { provider } = setup(() => jsonResponse(status, { reason, timestamp: 1_700_000_000_000 }));
    const result = await provider.send(pushRequest('apns', TOKEN));
    expect(result).toMatchObject({ ...expected, code: reason });
    expect(flags(result)).toEqual(flags(expected));
    if (result.kind !== 'sent') expect(result.reason).toContain(reason);
  });

  it.each<[number, Expectation]>([
    [410, invalid],
    [403, config],
    [400, permanent],
    [502, retry],
  ])('an unknown reason with status %i falls back to the status', async (status, expected) => {
    const { provider } = setup(() => new Response('upstream trouble', { status }));
    expect(await provider.send(pushRequest('apns', TOKEN))).toMatchObject({
      ...expected,
      code: String(status),
    });
  });

  it('honours Retry-After on 429', async () => {
    const { provider } = setup(() =>
      jsonResponse(429, { reason: 'TooManyRequests' }, { 'retry-after': '120' }),
    );
    expect(await provider.send(pushRequest('apns', TOKEN))).toEqual({
      kind: 'retryable',
      reason: 'APNs 429 TooManyRequests',
      code: 'TooManyRequests',
      retryAfterSeconds: 120,
    });
  });

  it('treats a network error as retryable', async () => {
    const { provider } = setup(() => {
      throw new TypeError('Network connection lost.');
    });
    expect(await provider.send(pushRequest('apns', TOKEN))).toEqual({
      kind: 'retryable',
      reason: 'network error: Network connection lost.',
    });
  });

  it('treats a timeout as retryable', async () => {
    const { provider } = setup(() => {
      throw new DOMException('The operation timed out.', 'TimeoutError');
    });
    expect(await provider.send(pushRequest('apns', TOKEN))).toEqual({ kind: 'retryable', reason: 'timeout' });
  });
});

describe('apns credentials', () => {
  it('names every missing variable', () => {
    const attempt = () => apns.create({}, { fetch: async () => ok(), now: () => 0 });
    expect(attempt).toThrow(MissingCredentialsError);
    expect(missingCredentials(attempt).variables).toEqual([
      'APNS_KEY_ID',
      'APNS_TEAM_ID',
      'APNS_PRIVATE_KEY',
      'APNS_TOPIC',
    ]);
  });

  it('names only the missing one', () => {
    const { APNS_TOPIC: _topic, ...withoutTopic } = env;
    expect(() => apnsConfigFromEnv(withoutTopic)).toThrow(/APNS_TOPIC/);
  });
});
