import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_PREVIOUS_SECRETS,
  signToken,
  verificationSecrets,
  verifyToken,
} from '../../src/lib/signed-token';

const SECRET = 'test-secret';
const NOW = Date.parse('2026-06-01T12:00:00Z');
const HOUR = 3_600_000;

// Independent helpers: plain btoa/atob, not the module's encoder.
const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const encodeJson = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));
const decodeJson = (part: string): unknown =>
  JSON.parse(
    atob(
      part
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(part.length / 4) * 4, '='),
    ),
  );

/** Replaces one character with a different URL-safe one. */
function flipChar(text: string, index: number): string {
  const char = text[index];
  return text.slice(0, index) + (char === 'A' ? 'B' : 'A') + text.slice(index + 1);
}

describe('signToken / verifyToken round trip', () => {
  it('returns the payload it was given', async () => {
    const payload = { d: 'dlv_01jabc', n: 42, s: 'ünïcødé ✓', b: '\uFEFFbom' };
    const token = await signToken(SECRET, 'unsubscribe', payload);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(await verifyToken(SECRET, 'unsubscribe', token, NOW)).toEqual(payload);
  });

  it('is short: a delivery id fits in about a hundred characters', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_01jabcdefghjkmnpqrstvwxyz' });
    expect(token.length).toBeLessThanOrEqual(110);
  });

  it('is URL-safe, so it survives a query string untouched', async () => {
    const token = await signToken(SECRET, 'click', { u: 'https://example.com/a?b=c&d=e#f', d: 'dlv_1' });
    expect(encodeURIComponent(token)).toBe(token);
  });

  it('accepts a token before its expiry', async () => {
    const token = await signToken(SECRET, 'unsubscribe', { d: 'dlv_1' }, { expiresAtMs: NOW + HOUR });
    expect(await verifyToken(SECRET, 'unsubscribe', token, NOW + HOUR - 1000)).toEqual({ d: 'dlv_1' });
  });
});

describe('matches an independent HMAC-SHA256', () => {
  // Golden values computed outside this codebase with Python:
  //   p = urlsafe_b64encode(b'{"v":1,"d":"dlv_123"}').rstrip(b'=')
  //   hmac.new(b'test-secret', b'unsubscribe.' + p, hashlib.sha256).digest()
  it('produces the known token for a fixed input', async () => {
    expect(await signToken(SECRET, 'unsubscribe', { d: 'dlv_123' })).toBe(
      'eyJ2IjoxLCJkIjoiZGx2XzEyMyJ9.5MmfxdIXLE6r4QhtitvZwGIFAKmj5gmYIxtqd2cuI1k',
    );
  });

  it('verifies a token minted elsewhere, with exp, and reads its payload', async () => {
    const external =
      'eyJ2IjoxLCJkIjoiZGx2XzAxIiwidSI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYT94PTEiLCJleHAiOjE4MDAwMDAwMDB9.H_27p-IxRexDjwKbtcFvQtIUHKXO3NJticr6b7_9LRo';
    expect(await verifyToken(SECRET, 'click', external, NOW)).toEqual({
      d: 'dlv_01',
      u: 'https://example.com/a?x=1',
    });
    expect(await verifyToken(SECRET, 'click', external, 1_800_000_000_000)).toBeNull();
  });

  it('signs exactly purpose + "." + payload part (recomputed with crypto.subtle)', async () => {
    const token = await signToken(
      'another secret',
      'open',
      { d: 'dlv_9', n: 7 },
      { expiresAtMs: NOW + 1500 },
    );
    const [payloadPart = '', macPart = ''] = token.split('.');
    expect(decodeJson(payloadPart)).toEqual({ v: 1, d: 'dlv_9', n: 7, exp: Math.floor((NOW + 1500) / 1000) });
    const key = await crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode('another secret'),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`open.${payloadPart}`));
    expect(macPart).toBe(b64url(new Uint8Array(mac)));
  });
});

describe('verifyToken rejects', () => {
  it('an altered payload (same MAC, different claims)', async () => {
    const token = await signToken(SECRET, 'unsubscribe', { d: 'dlv_1' });
    const [, mac] = token.split('.');
    const forged = `${encodeJson({ v: 1, d: 'dlv_2' })}.${mac}`;
    expect(await verifyToken(SECRET, 'unsubscribe', forged, NOW)).toBeNull();
  });

  it('a click token bound to URL A presented for URL B', async () => {
    const token = await signToken(SECRET, 'click', { d: 'dlv_1', u: 'https://a.example/' });
    const [payloadPart = '', mac] = token.split('.');
    const claims = decodeJson(payloadPart) as Record<string, unknown>;
    const forged = `${encodeJson({ ...claims, u: 'https://evil.example/' })}.${mac}`;
    expect(await verifyToken(SECRET, 'click', token, NOW)).toEqual({ d: 'dlv_1', u: 'https://a.example/' });
    expect(await verifyToken(SECRET, 'click', forged, NOW)).toBeNull();
  });

  it('every single-character change of the signature', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    const dot = token.indexOf('.');
    for (let i = dot + 1; i < token.length; i++) {
      expect(await verifyToken(SECRET, 'open', flipChar(token, i), NOW)).toBeNull();
    }
  });

  it('every single-character change of the payload part', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    for (let i = 0; i < token.indexOf('.'); i++) {
      expect(await verifyToken(SECRET, 'open', flipChar(token, i), NOW)).toBeNull();
    }
  });

  it('truncations at every length', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    for (let n = 0; n < token.length; n++) {
      expect(await verifyToken(SECRET, 'open', token.slice(0, n), NOW)).toBeNull();
    }
  });

  it('a different secret', async () => {
    const token = await signToken(SECRET, 'unsubscribe', { d: 'dlv_1' });
    expect(await verifyToken('other-secret', 'unsubscribe', token, NOW)).toBeNull();
  });

  it('a different purpose, in every direction', async () => {
    const purposes = ['unsubscribe', 'open', 'click'];
    for (const signedFor of purposes) {
      const token = await signToken(SECRET, signedFor, { d: 'dlv_1' });
      for (const usedFor of purposes) {
        const result = await verifyToken(SECRET, usedFor, token, NOW);
        if (usedFor === signedFor) expect(result).toEqual({ d: 'dlv_1' });
        else expect(result).toBeNull();
      }
    }
  });

  it('an expired token, from the expiry second on', async () => {
    const expiresAtMs = Date.parse('2026-06-01T13:00:00Z');
    const token = await signToken(SECRET, 'unsubscribe', { d: 'dlv_1' }, { expiresAtMs });
    expect(await verifyToken(SECRET, 'unsubscribe', token, expiresAtMs - 1)).toEqual({ d: 'dlv_1' });
    expect(await verifyToken(SECRET, 'unsubscribe', token, expiresAtMs)).toBeNull();
    expect(await verifyToken(SECRET, 'unsubscribe', token, expiresAtMs + HOUR)).toBeNull();
    expect(await verifyToken(SECRET, 'unsubscribe', token, Number.NaN)).toBeNull();
  });

  it('a non-canonical spelling of a valid signature', async () => {
    // 32 bytes take 43 characters; the last one carries 2 unused bits. Setting them gives a
    // string that lenient decoders map to the same bytes.
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(token.at(-1) ?? '');
    const respelled = token.slice(0, -1) + alphabet[last | 1];
    expect(respelled).not.toBe(token);
    expect(await verifyToken(SECRET, 'open', respelled, NOW)).toBeNull();
  });

  it('a correctly signed but structurally wrong payload', async () => {
    const sign = async (json: string) => {
      const payloadPart = b64url(new TextEncoder().encode(json));
      const key = await crypto.subtle.importKey(
        'raw',
        new TextEncoder().encode(SECRET),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['sign'],
      );
      const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`open.${payloadPart}`));
      return `${payloadPart}.${b64url(new Uint8Array(mac))}`;
    };
    for (const json of [
      '{"d":"dlv_1"}', // no version
      '{"v":2,"d":"dlv_1"}', // unknown version
      '{"v":1,"exp":"soon"}', // exp not a number
      '{"v":1,"d":{"nested":true}}',
      '{"v":1,"d":null}',
      '[1,2]',
      'null',
      '"text"',
      'not json',
    ]) {
      expect(await verifyToken(SECRET, 'open', await sign(json), NOW), json).toBeNull();
    }
    expect(await verifyToken(SECRET, 'open', await sign('{"v":1,"d":"dlv_1"}'), NOW)).toEqual({ d: 'dlv_1' });
  });

  it.each([
    ['empty', ''],
    ['no dot', 'abc'],
    ['two dots', 'a.b.c'],
    ['only a dot', '.'],
    ['padding', 'eyJ2IjoxfQ==.abc'],
    ['standard base64 characters', 'ab+/.cd+/'],
    ['spaces', 'ab cd.ef'],
    ['very long', `${'A'.repeat(5000)}.${'A'.repeat(43)}`],
  ])('malformed: %s', async (_name, token) => {
    expect(await verifyToken(SECRET, 'open', token, NOW)).toBeNull();
  });

  it.each([undefined, null, 42, {}, ['a.b']])('non-string input %j', async (token) => {
    expect(await verifyToken(SECRET, 'open', token, NOW)).toBeNull();
  });

  it('anything when the secret or purpose is empty', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    expect(await verifyToken('', 'open', token, NOW)).toBeNull();
    expect(await verifyToken(SECRET, '', token, NOW)).toBeNull();
  });
});

describe('rotation: verifying with the current secret and previous ones', () => {
  it('a token signed with a previous secret verifies while that secret is listed, and only then', async () => {
    const token = await signToken('old-secret', 'click', { d: 'dlv_1', u: 'https://x.example/' });
    const listed = verificationSecrets('new-secret', 'older-secret, old-secret');
    expect(await verifyToken(listed, 'click', token, NOW)).toEqual({ d: 'dlv_1', u: 'https://x.example/' });
    expect(
      await verifyToken(verificationSecrets('new-secret', 'older-secret'), 'click', token, NOW),
    ).toBeNull();
    expect(await verifyToken('new-secret', 'click', token, NOW)).toBeNull();
    // The purpose and expiry still apply, whichever secret verifies.
    expect(await verifyToken(listed, 'open', token, NOW)).toBeNull();
    const expired = await signToken('old-secret', 'dashboard', { sub: 'admin' }, { expiresAtMs: NOW - 1 });
    expect(await verifyToken(listed, 'dashboard', expired, NOW)).toBeNull();
  });

  it('verificationSecrets: the current one first, then the previous ones, trimmed, without blanks or repeats', () => {
    expect(verificationSecrets('cur', undefined)).toEqual(['cur']);
    expect(verificationSecrets('cur', ' a , ,b,cur, a ')).toEqual(['cur', 'a', 'b']);
    expect(verificationSecrets(undefined, 'a,b')).toEqual([]);
    expect(verificationSecrets('', 'a,b')).toEqual([]);
    const many = Array.from({ length: MAX_PREVIOUS_SECRETS + 3 }, (_, i) => `p${i}`).join(',');
    expect(verificationSecrets('cur', many)).toHaveLength(MAX_PREVIOUS_SECRETS + 1);
  });

  it('an empty list verifies nothing', async () => {
    const token = await signToken(SECRET, 'open', { d: 'dlv_1' });
    expect(await verifyToken([], 'open', token, NOW)).toBeNull();
    expect(await verifyToken([''], 'open', token, NOW)).toBeNull();
  });
});

describe('signToken refuses misuse', () => {
  it.each([
    ['empty secret', '', 'open', { d: 'x' }],
    ['empty purpose', SECRET, '', { d: 'x' }],
    ['reserved key v', SECRET, 'open', { v: 2 }],
    ['reserved key exp', SECRET, 'open', { exp: 1 }],
    ['NaN', SECRET, 'open', { n: Number.NaN }],
    ['Infinity', SECRET, 'open', { n: Number.POSITIVE_INFINITY }],
  ])('%s', async (_name, secret, purpose, payload) => {
    await expect(signToken(secret, purpose, payload)).rejects.toThrow(TypeError);
  });

  it('a non-finite expiry', async () => {
    await expect(signToken(SECRET, 'open', { d: 'x' }, { expiresAtMs: Number.NaN })).rejects.toThrow(
      TypeError,
    );
  });
});

describe('properties', () => {
  it('random strings never throw and never verify', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc
            .tuple(fc.base64String(), fc.base64String())
            .map(([a, b]) => `${a}.${b}`.replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '')),
          fc
            .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/))
            .map(([a, b]) => `${a}.${b}`),
        ),
        async (token) => {
          expect(await verifyToken(SECRET, 'open', token, NOW)).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('any payload round-trips, and only for its own purpose', async () => {
    const keyArb = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== 'v' && k !== 'exp');
    const valueArb = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(keyArb, valueArb, { maxKeys: 5 }), async (payload) => {
        const token = await signToken(SECRET, 'click', payload);
        // JSON turns -0 into 0; compare against what JSON can carry.
        expect(await verifyToken(SECRET, 'click', token, NOW)).toEqual(JSON.parse(JSON.stringify(payload)));
        expect(await verifyToken(SECRET, 'open', token, NOW)).toBeNull();
      }),
      { numRuns: 150 },
    );
  });
});
