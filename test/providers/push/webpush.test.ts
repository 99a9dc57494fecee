import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { webPushConfigFromEnv, webpush } from '../../../src/providers/push/webpush';
import { encryptAes128gcm } from '../../../src/providers/push/webpush-encryption';
import type { Provider } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import { b64url, fromB64url, generateP256, manualClock, pushRequest, recordingFetch } from './helpers';

const encoder = new TextEncoder();
const ENDPOINT = 'https://fcm.googleapis.com/fcm/send/dGVzdC1zdWJzY3JpcHRpb24:APA91b-example';

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
    x: b64url(publicKey.slice(1, 33)),
    y: b64url(publicKey.slice(33, 65)),
    d,
  };
  return crypto.subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
}

describe('RFC 8291 section 5 example', () => {
  // Inputs and the encrypted body from RFC 8291 section 5 and appendix A.
  const plaintext = 'When I grow up, I want to be a watermelon';
  const auth = fromB64url('BTBZMqHH6r4Tts7J_aSIgg');
  const uaPublic = fromB64url(
    'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  );
  const uaPrivate = 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94';
  const asPublic = fromB64url(
    'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  );
  const asPrivate = 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw';
  const salt = fromB64url('DGv6ra1nlYgDCS1FRnbzlw');
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
    expect(b64url(body)).toBe(expectedBody);
  });

  it('the test decryptor recovers the RFC plaintext (so it can judge the provider)', async () => {
    const receiver = { privateKey: await ecdhPrivateKey(uaPublic, uaPrivate), publicKey: uaPublic };
    const decrypted = await browserDecrypt(fromB64url(expectedBody), receiver, auth);
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
    keys: { p256dh: b64url(publicKey), auth: b64url(auth) },
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
    VAPID_PUBLIC_KEY: b64url((await crypto.subtle.exportKey('raw', vapid.publicKey)) as ArrayBuffer),
    VAPID_PRIVATE_KEY: jwk.d as string,
    VAPID_SUBJECT: 'mailto:ops@herald.example',
  };
  browser = await browserSubscription();
});

function setup(
  respond: (request: Request, index: number) => Response | Promise<Response> = () => created(),
  extraEnv: Record<string, string> = {},
) {
  const clock = manualClock();
  const recorder = recordingFetch(respond);
  const provider = webpush.create(
    { ...env, ...extraEnv },
    { fetch: recorder.fetch, now: clock.now },
  ) as Provider;
  return { provider, clock, requests: recorder.requests };
}

const created = (location = 'https://fcm.googleapis.com/0:1700000000%abc') =>
  new Response(null, { status: 201, headers: { location } });

function vapidParts(request: Request) {
  const match = /^vapid t=([^,\s]+), k=([A-Za-z0-9_-]+)$/.exec(request.headers.get('authorization') ?? '');
  if (!match) throw new Error(`not a vapid header: ${request.headers.get('authorization')}`);
  return { jwt: match[1] as string, k: match[2] as string };
}

describe('webpush request', () => {
  it('never follows a redirect: a 3xx from the push service is a permanent failure', async () => {
    const { provider, requests } = setup(
      () => new Response(null, { status: 302, headers: { location: 'http://169.254.169.254/' } }),
    );
    const result = await provider.send(pushRequest('webpush', browser.json));
    expect(requests[0]?.redirect).toBe('manual');
    expect(result).toMatchObject({ kind: 'permanent', code: '302' });
  });

  it('sends an aes128gcm body the browser can decrypt, with the RFC 8030 headers', async () => {
    const { provider, requests } = setup();
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
    expect(result).toEqual({
      kind: 'sent',
      providerMessageId: 'https://fcm.googleapis.com/0:1700000000%abc',
    });
    const [request] = requests;
    if (!request) throw new Error('no request');
    expect(request.url).toBe(ENDPOINT);
    expect(request.method).toBe('POST');
    expect(request.headers.get('ttl')).toBe('600');
    expect(request.headers.get('urgency')).toBe('high');
    expect(request.headers.get('topic')).toBe('order-42');
    expect(request.headers.get('content-encoding')).toBe('aes128gcm');
    const body = new Uint8Array(await request.arrayBuffer());
    expect(body.byteLength).toBeLessThanOrEqual(4096);
    const plaintext = await browserDecrypt(body, browser.receiver, browser.auth);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual({
      title: 'Shipped',
      body: 'Your order is on its way',
      url: 'https://shop.example/orders/42',
      data: { orderId: '42' },
    });
  });

  it('signs a VAPID JWT that verifies with VAPID_PUBLIC_KEY, for the endpoint origin', async () => {
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('webpush', browser.json));
    const { jwt, k } = vapidParts(requests[0] as Request);
    expect(k).toBe(env.VAPID_PUBLIC_KEY);
    expect(decodeProtectedHeader(jwt)).toEqual({ typ: 'JWT', alg: 'ES256' });
    // Verify with the key the header advertises, imported independently of the provider.
    const advertised = await crypto.subtle.importKey(
      'raw',
      fromB64url(k),
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
    const { provider, requests } = setup();
    await provider.send(pushRequest('webpush', browser.json, { priority }));
    expect(requests[0]?.headers.get('urgency')).toBe(urgency);
    expect(requests[0]?.headers.get('ttl')).toBe('86400');
    expect(requests[0]?.headers.has('topic')).toBe(false);
  });

  it('turns a collapse id that is not a valid Topic into 32 base64url characters', async () => {
    const { provider, requests } = setup();
    await provider.send(
      pushRequest('webpush', browser.json, {
        message: { title: 't', body: 'b', json: { collapseId: 'order 42: status/changed' } },
      }),
    );
    expect(requests[0]?.headers.get('topic')).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('reuses the VAPID JWT per origin and signs a new one for another push service', async () => {
    const other = await browserSubscription(
      'https://updates.push.services.mozilla.com/wpush/v2/gAAAA-example',
    );
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('webpush', browser.json));
    clock.advance(60_000);
    await provider.send(pushRequest('webpush', browser.json));
    await provider.send(pushRequest('webpush', other.json));
    const [first, second, third] = requests.map((request) => vapidParts(request).jwt);
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    const { payload } = await jwtVerify(third as string, vapid.publicKey, {
      currentDate: new Date(clock.now()),
    });
    expect(payload.aud).toBe('https://updates.push.services.mozilla.com');
  });

  it('signs a fresh VAPID JWT before the cached one gets close to expiry', async () => {
    const { provider, clock, requests } = setup();
    await provider.send(pushRequest('webpush', browser.json));
    clock.advance(11.5 * 3600_000);
    await provider.send(pushRequest('webpush', browser.json));
    const [first, second] = requests.map((request) => vapidParts(request).jwt);
    expect(second).not.toBe(first);
  });

  it('refuses a payload that cannot fit one 4096-byte record without calling the push service', async () => {
    const { provider, requests } = setup();
    const result = await provider.send(
      pushRequest('webpush', browser.json, { message: { title: 't', body: 'x'.repeat(4000) } }),
    );
    expect(result).toMatchObject({ kind: 'permanent', code: 'PayloadTooLarge' });
    expect(result).not.toHaveProperty('invalidAddress');
    expect(requests).toHaveLength(0);
  });
});

describe('webpush subscriptions', () => {
  const keys = () => JSON.parse(browser.json).keys as { p256dh: string; auth: string };
  it.each([
    ['not JSON', () => 'not json'],
    ['no endpoint', () => JSON.stringify({ keys: keys() })],
    ['an http endpoint', () => JSON.stringify({ endpoint: 'http://push.example.com/x', keys: keys() })],
    ['a private address', () => JSON.stringify({ endpoint: 'https://10.0.0.5/push', keys: keys() })],
    [
      'a loopback endpoint outside development',
      () => JSON.stringify({ endpoint: 'https://localhost/push', keys: keys() }),
    ],
    [
      'a short p256dh',
      () => JSON.stringify({ endpoint: ENDPOINT, keys: { ...keys(), p256dh: b64url(new Uint8Array(33)) } }),
    ],
    [
      'a short auth',
      () => JSON.stringify({ endpoint: ENDPOINT, keys: { ...keys(), auth: b64url(new Uint8Array(8)) } }),
    ],
    [
      'a p256dh off the curve',
      () =>
        JSON.stringify({
          endpoint: ENDPOINT,
          keys: { ...keys(), p256dh: b64url(Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1))) },
        }),
    ],
  ])('rejects %s as an invalid address without calling out', async (_, token) => {
    const { provider, requests } = setup();
    expect(await provider.send(pushRequest('webpush', token()))).toMatchObject({
      kind: 'permanent',
      invalidAddress: true,
      code: 'InvalidSubscription',
    });
    expect(requests).toHaveLength(0);
  });

  it('allows a loopback endpoint in development (local fake push service)', async () => {
    const local = await browserSubscription('http://localhost:8788/push/1');
    const { provider, requests } = setup(undefined, { ENVIRONMENT: 'development' });
    expect(await provider.send(pushRequest('webpush', local.json))).toMatchObject({ kind: 'sent' });
    expect(requests[0]?.url).toBe('http://localhost:8788/push/1');
  });
});

const flags = (result: object) => ({
  invalidAddress: 'invalidAddress' in result && result.invalidAddress === true,
  configError: 'configError' in result && result.configError === true,
});

describe('webpush responses', () => {
  it.each<[number, Record<string, string>, Record<string, unknown>]>([
    [200, {}, { kind: 'sent' }],
    [202, {}, { kind: 'sent' }],
    [404, {}, { kind: 'permanent', invalidAddress: true, code: '404' }],
    [410, {}, { kind: 'permanent', invalidAddress: true, code: '410' }],
    [413, {}, { kind: 'permanent', code: 'PayloadTooLarge' }],
    [429, { 'retry-after': '90' }, { kind: 'retryable', retryAfterSeconds: 90, code: '429' }],
    [429, {}, { kind: 'retryable', code: '429' }],
    [500, {}, { kind: 'retryable', code: '500' }],
    [503, { 'retry-after': '15' }, { kind: 'retryable', retryAfterSeconds: 15 }],
    [400, {}, { kind: 'permanent', configError: true, code: '400' }],
    [401, {}, { kind: 'permanent', configError: true, code: '401' }],
    [403, {}, { kind: 'permanent', configError: true, code: '403' }],
    [415, {}, { kind: 'permanent', code: '415' }],
  ])('%i %j', async (status, headers, expected) => {
    const { provider } = setup(
      () => new Response(status === 200 || status === 202 ? null : '{"reason":"x"}', { status, headers }),
    );
    const result = await provider.send(pushRequest('webpush', browser.json));
    expect(result).toMatchObject(expected);
    expect(flags(result)).toEqual(flags(expected));
  });

  it('has no providerMessageId when the push service sends no Location', async () => {
    const { provider } = setup(() => new Response(null, { status: 201 }));
    expect(await provider.send(pushRequest('webpush', browser.json))).toEqual({ kind: 'sent' });
  });

  it.each([
    ['network error', new TypeError('Network connection lost.'), 'network error: Network connection lost.'],
    ['timeout', new DOMException('timed out', 'TimeoutError'), 'timeout'],
  ])('treats a %s as retryable', async (_, error, reason) => {
    const { provider } = setup(() => {
      throw error;
    });
    expect(await provider.send(pushRequest('webpush', browser.json))).toEqual({ kind: 'retryable', reason });
  });
});

describe('webpush credentials', () => {
  it('names every missing variable', () => {
    const error = missingCredentials(() =>
      webpush.create({}, { fetch: async () => new Response(), now: () => 0 }),
    );
    expect(error.variables).toEqual(['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT']);
  });

  it('requires a mailto: or https: subject', () => {
    expect(() => webPushConfigFromEnv({ ...env, VAPID_SUBJECT: 'ops@herald.example' })).toThrow(
      /VAPID_SUBJECT/,
    );
  });

  it('reports unusable VAPID keys as a config error', async () => {
    const { provider, requests } = setup(undefined, { VAPID_PRIVATE_KEY: 'c2hvcnQ' });
    expect(await provider.send(pushRequest('webpush', browser.json))).toMatchObject({
      kind: 'permanent',
      configError: true,
    });
    expect(requests).toHaveLength(0);
  });
});
