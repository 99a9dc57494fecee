import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { APNS_LIMITS, apns, apnsConfigFromEnv } from '../../../src/providers/push/apns';
import { MissingCredentialsError } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  FIXED_NOW,
  jsonResponse,
  manualClock,
  networkRows,
  noNetwork,
  type Outcome,
  onlyCall,
  type ProviderCase,
  providerOn,
  type RecordedCall,
  refusalTable,
  type Script,
  textResponse,
} from '../harness';
import { generateP256, pkcs8Pem, pushRequest } from './helpers';

const TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const DELIVERY_UUID = '0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b';
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT = /^bearer [\w-]+\.[\w-]+\.[\w-]+$/;

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

const ok = () => textResponse(200, null, { 'apns-id': 'echoed-by-apple' });

/** A provider on a fake APNs with a clock the test moves. */
function setup(script: Script = () => ok(), extraEnv: Record<string, string> = {}) {
  const clock = manualClock();
  const { provider, calls } = providerOn(apns, { ...env, ...extraEnv }, script, clock.now);
  return { provider, clock, calls };
}

function bearerOf(call: RecordedCall | undefined): string {
  const header = call?.request.headers.get('authorization') ?? '';
  expect(header).toMatch(JWT);
  return header.slice('bearer '.length);
}

// Sending notification requests: https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
const SEND: ExactRequest = {
  url: `https://api.push.apple.com/3/device/${TOKEN}`,
  headers: {
    authorization: JWT,
    'apns-topic': 'com.example.app',
    'apns-push-type': 'alert',
    'apns-priority': '5',
    // The default lifetime is one day from the fixed clock.
    'apns-expiration': String(Math.floor(FIXED_NOW / 1000) + 86_400),
    'apns-id': DELIVERY_UUID,
    // The idempotency key: a repeat of this delivery replaces the notification already shown.
    'apns-collapse-id': DELIVERY_UUID,
    'content-type': 'application/json',
  },
  body: {
    json: { aps: { alert: { title: 'Shipped', body: 'Your order is on its way' }, sound: 'default' } },
  },
};

const APNS: ProviderCase = {
  definition: apns,
  env: () => env,
  request: () => pushRequest('apns', TOKEN),
  exact: () => [SEND],
};

describe('apns request', () => {
  it('posts the documented path, headers and payload', async () => {
    const { provider, calls } = setup();
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
    expectOutcome(result, { kind: 'sent', providerMessageId: 'echoed-by-apple' });
    await expectRequest(onlyCall(calls), {
      ...SEND,
      headers: {
        ...SEND.headers,
        'apns-priority': '10',
        'apns-expiration': String(Math.floor(FIXED_NOW / 1000) + 3600),
        'apns-collapse-id': 'order-42',
      },
      // `aps` is Apple's: app data never sets it.
      body: {
        json: {
          aps: { alert: { title: 'Shipped', body: 'Your order is on its way' }, sound: 'default' },
          orderId: '42',
          count: 3,
          url: 'https://shop.example/orders/42',
        },
      },
    });
  });

  it.each([
    ['critical', '10'],
    ['high', '10'],
    ['normal', '5'],
    ['low', '5'],
  ] as const)('priority %s sends apns-priority %s', async (priority, expected) => {
    const { provider, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN, { priority }));
    expect(onlyCall(calls).request.headers.get('apns-priority')).toBe(expected);
  });

  it('sends apns-expiration 0 for a zero TTL ("try once, do not store")', async () => {
    const { provider, calls } = setup();
    await provider.send(
      pushRequest('apns', TOKEN, { message: { title: 't', body: 'b', json: { ttlSeconds: 0 } } }),
    );
    expect(onlyCall(calls).request.headers.get('apns-expiration')).toBe('0');
  });

  it('hashes a collapse id longer than 64 bytes to 64 hex characters', async () => {
    const { provider, calls } = setup();
    await provider.send(
      pushRequest('apns', TOKEN, {
        message: { title: 't', body: 'b', json: { collapseId: 'é'.repeat(40) } },
      }),
    );
    expect(onlyCall(calls).request.headers.get('apns-collapse-id')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps a collapse id of exactly 64 bytes as it is', async () => {
    const { provider, calls } = setup();
    const id = 'c'.repeat(64);
    await provider.send(
      pushRequest('apns', TOKEN, { message: { title: 't', body: 'b', json: { collapseId: id } } }),
    );
    expect(onlyCall(calls).request.headers.get('apns-collapse-id')).toBe(id);
  });

  it('is idempotent: the delivery id is apns-collapse-id on every attempt, apns-id only identifies', async () => {
    expect(apns.idempotent).toBe(true);
    const { provider, calls } = setup();
    expect(provider.idempotent).toBe(true);
    const id = 'dlv_01jtestdelivery0000000000';
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: id }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: id }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01jtestdelivery0000000001' }));
    const [first, repeat, other] = calls.map((call) => call.request.headers.get('apns-collapse-id'));
    expect(first).toBe(id);
    expect(repeat).toBe(id);
    expect(other).toBe('dlv_01jtestdelivery0000000001');
    // apns-id is Apple's notification identifier, not a key APNs deduplicates on.
    expect(calls[0]?.request.headers.get('apns-id')).toMatch(CANONICAL_UUID);
  });

  it('hashes a delivery id longer than 64 bytes into the collapse id', async () => {
    const { provider, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: `dlv_${'x'.repeat(61)}` }));
    expect(onlyCall(calls).request.headers.get('apns-collapse-id')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('lowercases an uppercase UUID delivery id for apns-id', async () => {
    const { provider, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'F47AC10B-58CC-4372-A567-0E02B2C3D479' }));
    expect(onlyCall(calls).request.headers.get('apns-id')).toBe('f47ac10b-58cc-4372-a567-0e02b2c3d479');
  });

  it('derives the same canonical UUID from a non-UUID delivery id on every retry', async () => {
    const { provider, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZX' }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZX' }));
    await provider.send(pushRequest('apns', TOKEN, { deliveryId: 'dlv_01HZY' }));
    const [first, retry, other] = calls.map((call) => call.request.headers.get('apns-id'));
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
    const { provider, calls } = setup(() => ok(), extraEnv);
    await provider.send(pushRequest('apns', TOKEN));
    expect(onlyCall(calls).request.url).toBe(`${base}/3/device/${TOKEN}`);
  });

  it('refuses an unknown APNS_ENVIRONMENT instead of guessing', () => {
    expect(() => apnsConfigFromEnv({ ...env, APNS_ENVIRONMENT: 'staging' })).toThrow(/APNS_ENVIRONMENT/);
  });

  refusalTable(APNS, [
    {
      name: 'a device token that is not hex',
      request: () => pushRequest('apns', '../../3/device/x'),
      expected: {
        kind: 'permanent',
        invalidAddress: true,
        code: 'BadDeviceToken',
        reason: 'device token is not a hex APNs token',
      },
    },
    {
      name: 'an address of another platform',
      request: () => pushRequest('fcm', TOKEN),
      expected: { kind: 'permanent', reason: 'apns provider got a non-apns address' },
    },
  ]);

  it('declares its documented limits', () => {
    expect(apns.limits).toBe(APNS_LIMITS);
    expect(APNS_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 4096,
      recipientsPerRequest: 1,
      fields: { collapseId: 64 },
    });
  });
});

describe('apns provider token', () => {
  it('is an ES256 JWT with kid, iss and iat that verifies with the public key', async () => {
    const { provider, clock, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN));
    const jwt = bearerOf(onlyCall(calls));
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', kid: 'ABC123DEFG' });
    const { payload } = await jwtVerify(jwt, keys.publicKey, { issuer: 'DEF123GHIJ', algorithms: ['ES256'] });
    expect(payload).toEqual({ iss: 'DEF123GHIJ', iat: Math.floor(clock.now() / 1000) });
  });

  it('accepts the key with escaped \\n newlines', async () => {
    const escaped = (env.APNS_PRIVATE_KEY as string).replace(/\n/g, '\\n');
    const { provider, calls } = setup(() => ok(), { APNS_PRIVATE_KEY: escaped });
    expectOutcome(await provider.send(pushRequest('apns', TOKEN)), {
      kind: 'sent',
      providerMessageId: 'echoed-by-apple',
    });
    await jwtVerify(bearerOf(onlyCall(calls)), keys.publicKey);
  });

  it('is reused for 40 minutes, then renewed', async () => {
    const { provider, clock, calls } = setup();
    await provider.send(pushRequest('apns', TOKEN));
    clock.advance(39 * 60_000);
    await provider.send(pushRequest('apns', TOKEN));
    clock.advance(2 * 60_000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second, third] = calls.map(bearerOf);
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    const { payload } = await jwtVerify(third as string, keys.publicKey, {
      currentDate: new Date(clock.now()),
    });
    expect(payload.iat).toBe(Math.floor(clock.now() / 1000));
  });

  it('is signed once for concurrent sends', async () => {
    const { provider, calls } = setup();
    await Promise.all(Array.from({ length: 5 }, () => provider.send(pushRequest('apns', TOKEN))));
    expect(calls).toHaveLength(5);
    expect(new Set(calls.map(bearerOf)).size).toBe(1);
  });

  it('is renewed after ExpiredProviderToken, which is retryable', async () => {
    const { provider, clock, calls } = setup((_, index) =>
      index === 0 ? jsonResponse(403, { reason: 'ExpiredProviderToken' }) : ok(),
    );
    expectOutcome(await provider.send(pushRequest('apns', TOKEN)), {
      kind: 'retryable',
      code: 'ExpiredProviderToken',
      reason: 'APNs 403 ExpiredProviderToken',
    });
    clock.advance(1000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second] = calls.map(bearerOf);
    expect(second).not.toBe(first);
  });

  it('is renewed after InvalidProviderToken, a configuration error', async () => {
    const { provider, clock, calls } = setup((_, index) =>
      index === 0 ? jsonResponse(403, { reason: 'InvalidProviderToken' }) : ok(),
    );
    expectOutcome(await provider.send(pushRequest('apns', TOKEN)), {
      kind: 'permanent',
      code: 'InvalidProviderToken',
      configError: true,
    });
    clock.advance(1000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second] = calls.map(bearerOf);
    expect(second).not.toBe(first);
  });

  it('is kept after TooManyProviderTokenUpdates, which a new token would worsen', async () => {
    const { provider, clock, calls } = setup((_, index) =>
      index === 0 ? jsonResponse(429, { reason: 'TooManyProviderTokenUpdates' }) : ok(),
    );
    expectOutcome(await provider.send(pushRequest('apns', TOKEN)), {
      kind: 'retryable',
      code: 'TooManyProviderTokenUpdates',
    });
    clock.advance(1000);
    await provider.send(pushRequest('apns', TOKEN));
    const [first, second] = calls.map(bearerOf);
    expect(second).toBe(first);
  });

  it('reports an unusable key as a config error without calling APNs', async () => {
    const { provider, calls } = setup(() => ok(), { APNS_PRIVATE_KEY: 'not a key' });
    expectOutcome(await provider.send(pushRequest('apns', TOKEN)), {
      kind: 'permanent',
      configError: true,
      reason: 'APNS_PRIVATE_KEY is not a usable ES256 PKCS#8 key',
    });
    expect(calls).toHaveLength(0);
  });
});

const invalid = { kind: 'permanent', invalidAddress: true } as const;
const config = { kind: 'permanent', configError: true } as const;
const permanent = { kind: 'permanent' } as const;
const retry = { kind: 'retryable' } as const;

/** Apple's documented reason strings, by status: the code is the reason, the reason text names it. */
const REASONS: [number, string, Omit<Outcome, 'code'>][] = [
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
  [403, 'BadEnvironmentKeyIdInToken', config],
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
];

const ANSWERS: AnswerRow[] = [
  { name: '200', reply: ok(), expected: { kind: 'sent', providerMessageId: 'echoed-by-apple' } },
  ...REASONS.map(([status, reason, expected]) => ({
    name: `${status} ${reason}`,
    reply: jsonResponse(status, { reason, timestamp: 1_700_000_000_000 }),
    expected: { ...expected, code: reason, reason: `APNs ${status} ${reason}` },
  })),
  // An unknown reason falls back to the status.
  ...(
    [
      [410, invalid],
      [403, config],
      [401, permanent],
      [400, permanent],
      [502, retry],
    ] as const
  ).map(([status, expected]) => ({
    name: `${status} without a known reason`,
    reply: textResponse(status, 'upstream trouble'),
    expected: { ...expected, code: String(status), reason: `APNs ${status} upstream trouble` },
  })),
  {
    name: '429 with Retry-After',
    reply: jsonResponse(429, { reason: 'TooManyRequests' }, { 'retry-after': '120' }),
    expected: {
      kind: 'retryable',
      reason: 'APNs 429 TooManyRequests',
      code: 'TooManyRequests',
      retryAfterSeconds: 120,
    },
  },
  ...networkRows(SEND.url),
];

describe('apns responses', () => {
  answerTable(APNS, ANSWERS);
});

describe('apns credentials', () => {
  it('names every missing variable', () => {
    const attempt = () => apns.create({}, noNetwork);
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
