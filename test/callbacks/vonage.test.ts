import { describe, expect, it } from 'vitest';
import { CallbackConfigError, type CallbackEvent } from '../../src/callbacks/types';
import {
  parseVonageCallback,
  type VonageCallbackConfig,
  verifyVonageCallback,
  vonageCallbackConfigFromEnv,
} from '../../src/callbacks/vonage';
import { hex, hmacBytes, memoryReplayGuard, refused, request, STALE_OFFSETS_SECONDS } from './helpers';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const SECRET = 'vonage-signature-secret-for-tests';
const URL_ = 'https://herald.test/v1/webhooks/vonage';

/** A signed DLR: the fields of Vonage's delivery receipt guide plus the signed-webhook ones. */
const DLR = {
  'api-key': 'abcd1234',
  'client-ref': 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz',
  'err-code': '0',
  'message-timestamp': '2018-10-25 12:10:29',
  messageId: '0B00000127FDBC63',
  msisdn: '447547232824',
  'network-code': '23410',
  nonce: 'f1b9d3b0-2b7c-4a8e-9d4f-2d1f5c6e7a8b',
  price: '0.03330000',
  scts: '1810251310',
  status: 'delivered',
  timestamp: String(NOW / 1000),
  to: 'Vonage',
};

/**
 * Vonage's documented manual signing, written independently: sort the params, replace & and = in
 * values with _, join as &name=value, then MD5(string + secret) or HMAC(secret, string), hex.
 */
async function vonageSign(
  params: Record<string, string>,
  method: 'md5hash' | 'sha256hmac' | 'sha512hmac',
  secret = SECRET,
): Promise<string> {
  const text = Object.keys(params)
    .filter((name) => name !== 'sig')
    .sort()
    .map((name) => `&${name}=${(params[name] ?? '').replaceAll('&', '_').replaceAll('=', '_')}`)
    .join('');
  if (method === 'md5hash')
    return hex(new Uint8Array(await crypto.subtle.digest('MD5', new TextEncoder().encode(text + secret))));
  return hex(await hmacBytes(method === 'sha256hmac' ? 'SHA-256' : 'SHA-512', secret, text)).toUpperCase();
}

const config = (method: string): VonageCallbackConfig => {
  const result = vonageCallbackConfigFromEnv({
    VONAGE_SIGNATURE_SECRET: SECRET,
    VONAGE_SIGNATURE_METHOD: method,
  });
  if (!result) throw new Error('expected a config');
  return result;
};

const formPost = (params: Record<string, string>) =>
  request({
    url: URL_,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });

describe('vonage callback config', () => {
  it('is null without a secret and defaults to md5hash', () => {
    expect(vonageCallbackConfigFromEnv({})).toBeNull();
    expect(vonageCallbackConfigFromEnv({ VONAGE_SIGNATURE_SECRET: SECRET })).toEqual({
      signatureSecret: SECRET,
      method: 'md5hash',
    });
  });

  it.each([
    ['md5hash', 'md5hash'],
    ['MD5HASH', 'md5hash'],
    ['md5', 'md5hmac'],
    ['SHA1HMAC', 'sha1hmac'],
    ['sha256', 'sha256hmac'],
    ['SHA-256 HMAC', 'sha256hmac'],
    ['sha512_hmac', 'sha512hmac'],
  ])('reads the method %s', (name, method) => {
    expect(config(name).method).toBe(method);
  });

  it('refuses an unknown method', () => {
    expect(() =>
      vonageCallbackConfigFromEnv({ VONAGE_SIGNATURE_SECRET: SECRET, VONAGE_SIGNATURE_METHOD: 'sha3' }),
    ).toThrow(CallbackConfigError);
  });
});

describe('vonage signature: published vectors', () => {
  // Vonage/vonage-node-sdk packages/sms/__tests__/__dataSets__/signature.ts (secret my_secret_key_for_testing)
  const params = {
    'message-timestamp': '2013-11-21 15:27:30',
    messageId: '020000001B0FE827',
    msisdn: '14843472194',
    text: 'Test again',
    timestamp: '1385047698',
    to: '13239877404',
    type: 'text',
  };
  const vectorNow = 1385047698 * 1000 + 10_000;
  const vectorConfig = (method: VonageCallbackConfig['method']) => ({
    signatureSecret: 'my_secret_key_for_testing',
    method,
  });

  it.each([
    ['md5hash', 'd2e7b1dc968737c5998ad624e02f90b7'],
    ['md5hmac', 'DDEBD46008C2D4E93CCE578A332A52D5'],
    ['sha1hmac', '27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A'],
    ['sha256hmac', 'DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330'],
    [
      'sha512hmac',
      'E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82',
    ],
  ] as const)('accepts the %s vector and refuses it under another method', async (method, sig) => {
    const vector = formPost({ ...params, sig });
    expect(await verifyVonageCallback(vector, vectorConfig(method), vectorNow)).toEqual({ ok: true });
    const other = method === 'md5hash' ? 'sha256hmac' : 'md5hash';
    expect(await verifyVonageCallback(vector, vectorConfig(other), vectorNow)).toEqual(
      refused('signature mismatch'),
    );
  });
});

describe('vonage signature: independently signed delivery receipts', () => {
  it.each(['md5hash', 'sha256hmac', 'sha512hmac'] as const)(
    'accepts a %s-signed form POST',
    async (method) => {
      const sig = await vonageSign(DLR, method);
      expect(await verifyVonageCallback(formPost({ ...DLR, sig }), config(method), NOW)).toEqual({
        ok: true,
      });
    },
  );

  it('accepts a signed JSON POST and a signed GET', async () => {
    const sig = await vonageSign(DLR, 'sha256hmac');
    const json = request({
      url: URL_,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...DLR, sig }),
    });
    expect(await verifyVonageCallback(json, config('sha256hmac'), NOW)).toEqual({ ok: true });
    const get = request({ url: `${URL_}?${new URLSearchParams({ ...DLR, sig })}`, method: 'GET' });
    expect(await verifyVonageCallback(get, config('sha256hmac'), NOW)).toEqual({ ok: true });
  });

  it('signs values containing & and = with those characters replaced', async () => {
    const params = { ...DLR, 'client-ref': 'a&b=c' };
    const sig = await vonageSign(params, 'sha256hmac');
    expect(await verifyVonageCallback(formPost({ ...params, sig }), config('sha256hmac'), NOW)).toEqual({
      ok: true,
    });
  });

  it('refuses a signature made with another secret (forged)', async () => {
    const sig = await vonageSign(DLR, 'sha256hmac', 'attacker-secret');
    expect(await verifyVonageCallback(formPost({ ...DLR, sig }), config('sha256hmac'), NOW)).toEqual(
      refused('signature mismatch'),
    );
  });

  it('refuses an altered parameter', async () => {
    const sig = await vonageSign(DLR, 'md5hash');
    const altered = formPost({ ...DLR, status: 'failed', 'err-code': '3', sig });
    expect(await verifyVonageCallback(altered, config('md5hash'), NOW)).toEqual(
      refused('signature mismatch'),
    );
  });

  it.each(STALE_OFFSETS_SECONDS)('refuses a genuinely signed timestamp %s', async (_name, offset) => {
    const params = { ...DLR, timestamp: String(NOW / 1000 + offset) };
    const sig = await vonageSign(params, 'sha256hmac');
    expect(await verifyVonageCallback(formPost({ ...params, sig }), config('sha256hmac'), NOW)).toEqual(
      refused('stale timestamp'),
    );
  });

  it('refuses unsigned receipts and receipts without a timestamp', async () => {
    expect(await verifyVonageCallback(formPost(DLR), config('md5hash'), NOW)).toEqual(
      refused('missing signature'),
    );
    const { timestamp: _dropped, ...untimed } = DLR;
    const sig = await vonageSign(untimed, 'md5hash');
    expect(await verifyVonageCallback(formPost({ ...untimed, sig }), config('md5hash'), NOW)).toEqual(
      refused('malformed timestamp'),
    );
  });

  it('refuses, without throwing, when the replay store fails', async () => {
    const broken = {
      seen: async (): Promise<boolean> => {
        throw new Error('store down');
      },
    };
    expect(
      await verifyVonageCallback(
        formPost({ ...DLR, sig: await vonageSign(DLR, 'md5hash') }),
        config('md5hash'),
        NOW,
        broken,
      ),
    ).toEqual(refused('replay check unavailable'));
  });

  it('refuses a replayed nonce when given a replay guard', async () => {
    const replay = memoryReplayGuard();
    const sig = await vonageSign(DLR, 'sha256hmac');
    const receipt = formPost({ ...DLR, sig });
    expect(await verifyVonageCallback(receipt, config('sha256hmac'), NOW, replay)).toEqual({ ok: true });
    expect(await verifyVonageCallback(receipt, config('sha256hmac'), NOW, replay)).toEqual(
      refused('replayed'),
    );
    expect(replay.keys).toEqual([`vonage:${DLR.nonce}`, `vonage:${DLR.nonce}`]);
  });
});

describe('vonage delivery receipt parsing', () => {
  const base = {
    deliveryId: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz',
    providerMessageId: '0B00000127FDBC63',
    occurredAt: '2018-10-25T12:10:29.000Z',
  };
  const rows: [string, Record<string, string>, CallbackEvent[]][] = [
    ['delivered', {}, [{ status: 'delivered', ...base }]],
    ['accepted (not final)', { status: 'accepted' }, []],
    ['buffered (not final)', { status: 'buffered' }, []],
    ['unknown (not final)', { status: 'unknown', 'err-code': '1' }, []],
    [
      'failed, err-code 2 (absent subscriber, temporary)',
      { status: 'failed', 'err-code': '2' },
      [{ status: 'failed', ...base, reason: 'vonage failed err-code 2' }],
    ],
    [
      'failed, err-code 3 (absent subscriber, permanent)',
      { status: 'failed', 'err-code': '3' },
      [{ status: 'failed', ...base, reason: 'vonage failed err-code 3', suppressAddress: true }],
    ],
    [
      'rejected, err-code 4 (call barred by user)',
      { status: 'rejected', 'err-code': '4' },
      [{ status: 'failed', ...base, reason: 'vonage rejected err-code 4', suppressAddress: true }],
    ],
    [
      'rejected, err-code 9 (illegal number: opted out)',
      { status: 'rejected', 'err-code': '9' },
      [{ status: 'unsubscribed', ...base, reason: 'vonage rejected err-code 9' }],
    ],
    [
      'expired',
      { status: 'expired', 'err-code': '8' },
      [{ status: 'failed', ...base, reason: 'vonage expired err-code 8' }],
    ],
  ];

  it.each(rows)('%s (form body)', (_name, overrides, expected) => {
    const body = new URLSearchParams({ ...DLR, ...overrides }).toString();
    expect(
      parseVonageCallback(body, new Headers({ 'content-type': 'application/x-www-form-urlencoded' })),
    ).toEqual(expected);
  });

  it('reads the same receipt from a JSON body', () => {
    const body = JSON.stringify({ ...DLR, status: 'failed', 'err-code': '3' });
    expect(parseVonageCallback(body, new Headers({ 'content-type': 'application/json' }))).toEqual([
      { status: 'failed', ...base, reason: 'vonage failed err-code 3', suppressAddress: true },
    ]);
  });

  it('reads the documented unsigned example (no client-ref)', () => {
    const example = {
      'err-code': '0',
      'message-timestamp': '2018-10-25 12:10:29',
      messageId: '0B00000127FDBC63',
      msisdn: '447547232824',
      'network-code': '23410',
      price: '0.03330000',
      scts: '1810251310',
      status: 'delivered',
      to: 'Vonage',
    };
    expect(parseVonageCallback(JSON.stringify(example), new Headers())).toEqual([
      { status: 'delivered', providerMessageId: '0B00000127FDBC63', occurredAt: '2018-10-25T12:10:29.000Z' },
    ]);
  });
});
