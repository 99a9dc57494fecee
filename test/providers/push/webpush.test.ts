import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, toBase64Url } from '../../../src/lib/encoding';
import { WEBPUSH_LIMITS, webPushConfigFromEnv, webpush } from '../../../src/providers/push/webpush';
import { encryptAes128gcm, MAX_PLAINTEXT_BYTES } from '../../../src/providers/push/webpush-encryption';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  manualClock,
  networkRows,
  noNetwork,
  onlyCall,
  type ProviderCase,
  providerOn,
  type RecordedCall,
  refusalTable,
  type Script,
  textResponse,
} from '../harness';
import { generateP256, pushRequest } from './helpers';

const encoder = new TextEncoder();
const ENDPOINT = 'https://fcm.googleapis.com/fcm/send/dGVzdC1zdWJzY3JpcHRpb24:APA91b-example';

/** Test vectors are valid base64url: decode or fail loudly. */
function bytes(text: string): Uint8Array {
  const decoded = fromBase64(text);
  if (!decoded) throw new Error(`not base64url: ${text}`);
  return decoded;
}

/**
 * RFC 8291 decryption as a browser does it, written from the RFC's HMAC formulas (section 3.3)
 * rather than WebCrypto's HKDF, so it does not share code or shape with the encryptor.
 */
async function browserDecrypt(
  body: Uint8Array,
  receiver: { privateKey: CryptoKey; publicKey: Uint8Array },
  auth: Uint8Array,
) {
  const salt = body.slice(0, 16);
  const recordSize = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idLength = body[20] as number;
  const senderPublic = body.slice(21, 21 + idLength);
  const ciphertext = body.slice(21 + idLength);
  expect(ciphertext.byteLength).toBeLessThanOrEqual(recordSize);

  const hmac = async (key: Uint8Array, data: Uint8Array) => {
    const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await crypto.subtle.sign('HMAC', k, data));
  };
  const join = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));
  const senderKey = await crypto.subtle.importKey(
    'raw',
    senderPublic,
    { name: 'ECDH', namedCurve: 'P-256' },
    false,
    [],
  );
  const algorithm = { name: 'ECDH', public: senderKey };
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(algorithm, receiver.privateKey, 256));

  const prkKey = await hmac(auth, ecdhSecret);
  const keyInfo = join(
    encoder.encode('WebPush: info'),
    new Uint8Array([0]),
    receiver.publicKey,
    senderPublic,
  );
  const ikm = await hmac(prkKey, join(keyInfo, new Uint8Array([1])));
  const prk = await hmac(salt, ikm);
  const cek = (
    await hmac(prk, join(encoder.encode('Content-Encoding: aes128gcm'), new Uint8Array([0, 1])))
  ).slice(0, 16);
  const nonce = (
    await hmac(prk, join(encoder.encode('Content-Encoding: nonce'), new Uint8Array([0, 1])))
  ).slice(0, 12);

  const aes = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, ['decrypt']);
  const padded = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce }, aes, ciphertext));
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  expect(padded[end]).toBe(0x02); // last-record delimiter (RFC 8188 2)
  return padded.slice(0, end);
}

/** Imports an X9.62 public key plus private scalar as an ECDH private key. */
async function ecdhPrivateKey(publicKey: Uint8Array, d: string): Promise<CryptoKey> {
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: toBase64Url(publicKey.slice(1, 33)),
    y: toBase64Url(publicKey.slice(33, 65)),
    d,
  };
  return crypto.subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
}

describe('RFC 8291 section 5 example', () => {
  // Inputs and the encrypted body from RFC 8291 section 5 and appendix A.
  const plaintext = 'When I grow up, I want to be a watermelon';
  const auth = bytes('BTBZMqHH6r4Tts7J_aSIgg');
  const uaPublic = bytes(
    'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  );
  const uaPrivate = 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94';
  const asPublic = bytes(
    'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  );
  const asPrivate = 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw';
  const salt = bytes('DGv6ra1nlYgDCS1FRnbzlw');
  const expectedBody =
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml' +
    'mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT' +
    'pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN';

  it('the encryptor reproduces the RFC body byte for byte', async () => {
    const sender = { privateKey: await ecdhPrivateKey(asPublic, asPrivate), publicKey: asPublic };
    const body = await encryptAes128gcm(
      encoder.encode(plaintext),
      { p256dh: uaPublic, auth },
      { salt, sender },
    );
    expect(toBase64Url(body)).toBe(expectedBody);
  });

  it('the test decryptor recovers the RFC plaintext (so it can judge the provider)', async () => {
    const receiver = { privateKey: await ecdhPrivateKey(uaPublic, uaPrivate), publicKey: uaPublic };
    const decrypted = await browserDecrypt(bytes(expectedBody), receiver, auth);
    expect(new TextDecoder().decode(decrypted)).toBe(plaintext);
  });
});

/** A browser subscription: its ECDH key pair and auth secret, generated per test run. */
async function browserSubscription(endpoint = ENDPOINT) {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const publicKey = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
  const auth = crypto.getRandomValues(new Uint8Array(16));
  const json = JSON.stringify({
    endpoint,
    expirationTime: null,
    keys: { p256dh: toBase64Url(publicKey), auth: toBase64Url(auth) },
  });
  return { json, receiver: { privateKey: pair.privateKey, publicKey }, auth };
}

let vapid: CryptoKeyPair;
let env: Record<string, string>;
let browser: Awaited<ReturnType<typeof browserSubscription>>;

beforeAll(async () => {
  vapid = await generateP256();
  const jwk = (await crypto.subtle.exportKey('jwk', vapid.privateKey)) as JsonWebKey;
  env = {
    VAPID_PUBLIC_KEY: toBase64Url(
      new Uint8Array((await crypto.subtle.exportKey('raw', vapid.publicKey)) as ArrayBuffer),
    ),
    VAPID_PRIVATE_KEY: jwk.d as string,
    VAPID_SUBJECT: 'mailto:ops@herald.example',
  };
  browser = await browserSubscription();
});

const created = (location = 'https://fcm.googleapis.com/0:1700000000%abc') =>
  textResponse(201, null, { location });

/** A provider on a fake push service with a clock the test moves. */
function setup(script: Script = () => created(), extraEnv: Record<string, string> = {}) {
  const clock = manualClock();
  const { provider, calls } = providerOn(webpush, { ...env, ...extraEnv }, script, clock.now);
  return { provider, clock, calls };
}

function vapidParts(call: RecordedCall | undefined) {
  const header = call?.request.headers.get('authorization') ?? '';
  const match = /^vapid t=([^,\s]+), k=([A-Za-z0-9_-]+)$/.exec(header);
  if (!match) throw new Error(`not a vapid header: ${header}`);
  return { jwt: match[1] as string, k: match[2] as string };
}

/** What the browser reads after decrypting the body. */
async function decrypted(call: RecordedCall): Promise<unknown> {
  expect(call.bytes.byteLength).toBeLessThanOrEqual(4096);
  const plaintext = await browserDecrypt(call.bytes, browser.receiver, browser.auth);
  return JSON.parse(new TextDecoder().decode(plaintext));
}

// RFC 8030 headers, an RFC 8291 body and an RFC 8292 VAPID Authorization.
const exactFor = (headers: Record<string, string>, payload: unknown): ExactRequest => ({
  url: ENDPOINT,
  headers: {
    ttl: '86400',
    urgency: 'normal',
    'content-encoding': 'aes128gcm',
    'content-type': 'application/octet-stream',
    authorization: /^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[A-Za-z0-9_-]+$/,
    ...headers,
  },
  body: {
    async check(call) {
      expect(await decrypted(call)).toEqual(payload);
      expect(vapidParts(call).k).toBe(env.VAPID_PUBLIC_KEY);
    },
  },
});

/** The Topic of the default delivery id: 36 characters, so the start of its SHA-256 in base64url. */
let deliveryTopic = '';
beforeAll(async () => {
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pushRequest('webpush', '').deliveryId)),
  );
  const base64 = btoa(String.fromCharCode(...digest));
  deliveryTopic = base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '').slice(0, 32);
});

const SEND = () =>
  exactFor({ topic: deliveryTopic }, { title: 'Shipped', body: 'Your order is on its way', data: {} });

const WEBPUSH: ProviderCase = {
  definition: webpush,
  env: () => env,
  request: () => pushRequest('webpush', browser.json),
  exact: () => [SEND()],
  secrets: () => [env.VAPID_PRIVATE_KEY as string],
};

describe('webpush request', () => {
  it('sends an aes128gcm body the browser can decrypt, with the RFC 8030 headers', async () => {
    const { provider, calls } = setup();
    const result = await provider.send(
      pushRequest('webpush', browser.json, {
        priority: 'high',
        message: {
          title: 'Shipped',
          body: 'Your order is on its way',
          url: 'https://shop.example/orders/42',
          json: { orderId: '42', collapseId: 'order-42', ttlSeconds: 600 },
        },
      }),
    );
    expectOutcome(result, { kind: 'sent', providerMessageId: 'https://fcm.googleapis.com/0:1700000000%abc' });
    await expectRequest(
      onlyCall(calls),
      exactFor(
        { ttl: '600', urgency: 'high', topic: 'order-42' },
        {
          title: 'Shipped',
          body: 'Your order is on its way',
          url: 'https://shop.example/orders/42',
          data: { orderId: '42' },
        },
      ),
    );
  });

  it('signs a VAPID JWT that verifies with VAPID_PUBLIC_KEY, for the endpoint origin', async () => {
    const { provider, clock, calls } = setup();
    await provider.send(pushRequest('webpush', browser.json));
    const { jwt, k } = vapidParts(onlyCall(calls));
    expect(k).toBe(env.VAPID_PUBLIC_KEY);
    expect(decodeProtectedHeader(jwt)).toEqual({ typ: 'JWT', alg: 'ES256' });
    // Verify with the key the header advertises, imported independently of the provider.
    const advertised = await crypto.subtle.importKey(
      'raw',
      bytes(k),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    );
    const { payload } = await jwtVerify(jwt, advertised, {
      audience: 'https://fcm.googleapis.com',
      subject: 'mailto:ops@herald.example',
      algorithms: ['ES256'],
      currentDate: new Date(clock.now()),
    });
    const nowSeconds = Math.floor(clock.now() / 1000);
    expect(payload.exp).toBeGreaterThan(nowSeconds);
    expect(payload.exp).toBeLessThanOrEqual(nowSeconds + 24 * 3600); // RFC 8292 2
    await jwtVerify(jwt, vapid.publicKey, { currentDate: new Date(clock.now()) });
  });

  it.each([
    ['critical', 'high'],
    ['high', 'high'],
    ['normal', 'normal'],
    ['low', 'low'],
  ] as const)('priority %s -> Urgency %s', async (priority, urgency) => {
    const { provider, calls } = setup();
    await provider.send(pushRequest('webpush', browser.json, { priority }));
    const headers = onlyCall(calls).request.headers;
    expect(headers.get('urgency')).toBe(urgency);
    expect(headers.get('ttl')).toBe('86400');
    expect(headers.get('topic')).toBe(deliveryTopic);
  });

  it('is idempotent: the delivery id is the Topic on every attempt when no collapse id is set', async () => {
    expect(webpush.idempotent).toBe(true);
    const { provider, calls } = setup(() => created());
    expect(provider.idempotent).toBe(true);
    const id = 'dlv_01jtestdelivery0000000000'; // Herald's ids are 30 URL-safe characters: kept as they are
    await provider.send(pushRequest('webpush', browser.json, { deliveryId: id }));
    await provider.send(pushRequest('webpush', browser.json, { deliveryId: id }));
    await provider.send(
      pushRequest('webpush', browser.json, { deliveryId: 'dlv_01jtestdelivery0000000001' }),
    );
    expect(calls.map((call) => call.request.headers.get('topic'))).toEqual([
      id,
      id,
      'dlv_01jtestdelivery0000000001',
    ]);
  });

  it('turns a collapse id that is not a valid Topic into 32 base64url characters', async () => {
    const { provider, calls } = setup();
    await provider.send(
      pushRequest('webpush', browser.json, {
        message: { title: 't', body: 'b', json: { collapseId: 'order 42: status/changed' } },
      }),
    );
    expect(onlyCall(calls).request.headers.get('topic')).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('keeps a valid Topic of exactly 32 characters, and hashes one of 33', async () => {
    const { provider, calls } = setup(() => created());
    const send = (collapseId: string) =>
      provider.send(
        pushRequest('webpush', browser.json, { message: { title: 't', body: 'b', json: { collapseId } } }),
      );
    await send('t'.repeat(32));
    await send('t'.repeat(33));
    const [kept, hashed] = calls.map((call) => call.request.headers.get('topic'));
    expect(kept).toBe('t'.repeat(32));
    expect(hashed).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(hashed).not.toBe('t'.repeat(32));
  });

  it('reuses the VAPID JWT per origin and signs a new one for another push service', async () => {
    const other = await browserSubscription(
      'https://updates.push.services.mozilla.com/wpush/v2/gAAAA-example',
    );
    const { provider, clock, calls } = setup(() => created());
    await provider.send(pushRequest('webpush', browser.json));
    clock.advance(60_000);
    await provider.send(pushRequest('webpush', browser.json));
    await provider.send(pushRequest('webpush', other.json));
    const [first, second, third] = calls.map((call) => vapidParts(call).jwt);
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    const { payload } = await jwtVerify(third as string, vapid.publicKey, {
      currentDate: new Date(clock.now()),
    });
    expect(payload.aud).toBe('https://updates.push.services.mozilla.com');
  });

  it('signs a fresh VAPID JWT before the cached one gets close to expiry', async () => {
    const { provider, clock, calls } = setup(() => created());
    await provider.send(pushRequest('webpush', browser.json));
    clock.advance(11.5 * 3600_000);
    await provider.send(pushRequest('webpush', browser.json));
    const [first, second] = calls.map((call) => vapidParts(call).jwt);
    expect(second).not.toBe(first);
  });

  it('sends a payload of exactly the declared 3993 bytes, in one 4096-byte body', async () => {
    const { provider, calls } = setup();
    const envelope = JSON.stringify({ title: 't', body: '', data: {} }).length;
    const body = 'x'.repeat(WEBPUSH_LIMITS.fields.payload - envelope);
    expectOutcome(
      await provider.send(pushRequest('webpush', browser.json, { message: { title: 't', body } })),
      {
        kind: 'sent',
        providerMessageId: 'https://fcm.googleapis.com/0:1700000000%abc',
      },
    );
    expect(onlyCall(calls).bytes.byteLength).toBe(4096);
  });

  it('declares its documented limits, and the payload limit is what one record carries', () => {
    expect(webpush.limits).toBe(WEBPUSH_LIMITS);
    expect(WEBPUSH_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 4096,
      recipientsPerRequest: 1,
      fields: { payload: 3993, topic: 32 },
      answerChars: 512,
    });
    expect(WEBPUSH_LIMITS.fields.payload).toBe(MAX_PLAINTEXT_BYTES);
  });
});

describe('webpush refusals', () => {
  const keys = () => JSON.parse(browser.json).keys as { p256dh: string; auth: string };
  const subscription = (value: object) => JSON.stringify(value);
  const invalid = (reason: string | RegExp) =>
    ({ kind: 'permanent', invalidAddress: true, code: 'InvalidSubscription', reason }) as const;
  refusalTable(WEBPUSH, [
    {
      name: 'a subscription that is not JSON',
      request: () => pushRequest('webpush', 'not json'),
      expected: invalid('subscription is not JSON'),
    },
    {
      name: 'a subscription without endpoint',
      request: () => pushRequest('webpush', subscription({ keys: keys() })),
      expected: invalid('subscription has no endpoint'),
    },
    {
      name: 'an http endpoint',
      request: () =>
        pushRequest('webpush', subscription({ endpoint: 'http://push.example.com/x', keys: keys() })),
      expected: invalid(/^subscription endpoint rejected: /),
    },
    {
      name: 'a private address',
      request: () =>
        pushRequest('webpush', subscription({ endpoint: 'https://10.0.0.5/push', keys: keys() })),
      expected: invalid(/^subscription endpoint rejected: /),
    },
    {
      name: 'a loopback endpoint outside development',
      request: () =>
        pushRequest('webpush', subscription({ endpoint: 'https://localhost/push', keys: keys() })),
      expected: invalid(/^subscription endpoint rejected: /),
    },
    {
      name: 'a plain http loopback endpoint outside development',
      request: () =>
        pushRequest('webpush', subscription({ endpoint: 'http://localhost:8788/push/1', keys: keys() })),
      expected: invalid('subscription endpoint rejected: loopback address is not allowed'),
    },
    {
      name: 'a short p256dh',
      request: () =>
        pushRequest(
          'webpush',
          subscription({ endpoint: ENDPOINT, keys: { ...keys(), p256dh: toBase64Url(new Uint8Array(33)) } }),
        ),
      expected: invalid('subscription keys are not a P-256 key and a 16-byte auth secret'),
    },
    {
      name: 'a short auth',
      request: () =>
        pushRequest(
          'webpush',
          subscription({ endpoint: ENDPOINT, keys: { ...keys(), auth: toBase64Url(new Uint8Array(8)) } }),
        ),
      expected: invalid('subscription keys are not a P-256 key and a 16-byte auth secret'),
    },
    {
      name: 'a p256dh off the curve',
      request: () =>
        pushRequest(
          'webpush',
          subscription({
            endpoint: ENDPOINT,
            keys: {
              ...keys(),
              p256dh: toBase64Url(Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1))),
            },
          }),
        ),
      expected: invalid('subscription p256dh is not a P-256 point'),
    },
    {
      name: 'a payload that cannot fit one 4096-byte record',
      request: () =>
        pushRequest('webpush', browser.json, { message: { title: 't', body: 'x'.repeat(4000) } }),
      expected: {
        kind: 'permanent',
        code: 'PayloadTooLarge',
        reason: /^payload is \d+ bytes, Web Push allows 3993$/,
      },
    },
    {
      name: 'an address of another platform',
      request: () => pushRequest('apns', 'abcdef'),
      expected: { kind: 'permanent', reason: 'webpush provider got a non-webpush address' },
    },
  ]);

  it('allows a loopback endpoint in development (local fake push service)', async () => {
    const local = await browserSubscription('http://localhost:8788/push/1');
    const { provider, calls } = setup(undefined, { ENVIRONMENT: 'development' });
    expectOutcome(await provider.send(pushRequest('webpush', local.json)), {
      kind: 'sent',
      providerMessageId: 'https://fcm.googleapis.com/0:1700000000%abc',
    });
    expect(onlyCall(calls).request.url).toBe('http://localhost:8788/push/1');
  });
});

const reason = (status: number) => `push service ${status} {"reason":"x"}`;

// Push service answers per RFC 8030 (and the services' own docs for 400/401/403 on VAPID).
const ANSWERS: AnswerRow[] = [
  {
    name: '201 with Location',
    reply: created(),
    expected: { kind: 'sent', providerMessageId: 'https://fcm.googleapis.com/0:1700000000%abc' },
  },
  { name: '201 without Location', reply: textResponse(201, null), expected: { kind: 'sent' } },
  { name: '200', reply: textResponse(200, null), expected: { kind: 'sent' } },
  { name: '202', reply: textResponse(202, null), expected: { kind: 'sent' } },
  {
    name: '302 is never followed',
    reply: textResponse(302, null, { location: 'http://169.254.169.254/' }),
    expected: { kind: 'permanent', code: '302', reason: 'push service 302' },
  },
  ...(
    [
      [404, {}, { kind: 'permanent', invalidAddress: true, code: '404' }],
      [410, {}, { kind: 'permanent', invalidAddress: true, code: '410' }],
      [413, {}, { kind: 'permanent', code: 'PayloadTooLarge' }],
      [429, { 'retry-after': '90' }, { kind: 'retryable', retryAfterSeconds: 90, code: '429' }],
      [429, {}, { kind: 'retryable', code: '429' }],
      [500, {}, { kind: 'retryable', code: '500' }],
      [503, { 'retry-after': '15' }, { kind: 'retryable', retryAfterSeconds: 15, code: '503' }],
      [400, {}, { kind: 'permanent', configError: true, code: '400' }],
      [401, {}, { kind: 'permanent', configError: true, code: '401' }],
      [403, {}, { kind: 'permanent', configError: true, code: '403' }],
      [415, {}, { kind: 'permanent', code: '415' }],
    ] as const
  ).map(([status, headers, expected]) => ({
    name: `${status} ${JSON.stringify(headers)}`,
    reply: textResponse(status, '{"reason":"x"}', headers),
    expected: { ...expected, reason: reason(status) },
  })),
  ...networkRows(ENDPOINT),
];

describe('webpush responses', () => {
  answerTable(WEBPUSH, ANSWERS);
});

describe('webpush credentials', () => {
  it('names every missing variable', () => {
    const error = missingCredentials(() => webpush.create({}, noNetwork));
    expect(error.variables).toEqual(['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT']);
  });

  it('requires a mailto: or https: subject', () => {
    expect(() => webPushConfigFromEnv({ ...env, VAPID_SUBJECT: 'ops@herald.example' })).toThrow(
      /VAPID_SUBJECT/,
    );
  });

  it('reports unusable VAPID keys as a config error without calling out', async () => {
    const { provider, calls } = setup(undefined, { VAPID_PRIVATE_KEY: 'c2hvcnQ' });
    expectOutcome(await provider.send(pushRequest('webpush', browser.json)), {
      kind: 'permanent',
      configError: true,
      reason: 'VAPID_PUBLIC_KEY/VAPID_PRIVATE_KEY are not a usable P-256 pair',
    });
    expect(calls).toHaveLength(0);
  });
});
