// Test-side helpers. Signatures are computed here with WebCrypto directly, never with the code
// under test, so a test passing means two implementations of the documented algorithm agree.
import type { CallbackRequest, ReplayGuard, VerifyResult } from '../../src/callbacks/types';

const encoder = new TextEncoder();

/** An in-memory ReplayGuard that records what it was asked, for assertions. */
export function memoryReplayGuard(): ReplayGuard & { keys: string[]; ttls: number[] } {
  const seenKeys = new Set<string>();
  const guard = {
    keys: [] as string[],
    ttls: [] as number[],
    async seen(key: string, ttlSeconds: number) {
      guard.keys.push(key);
      guard.ttls.push(ttlSeconds);
      if (seenKeys.has(key)) return true;
      seenKeys.add(key);
      return false;
    },
  };
  return guard;
}

export async function hmacBytes(
  hash: 'MD5' | 'SHA-1' | 'SHA-256' | 'SHA-512',
  key: string | Uint8Array,
  message: string,
): Promise<Uint8Array> {
  const raw = typeof key === 'string' ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(message)));
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function base64(bytes: Uint8Array): string {
  return btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(''));
}

export function request(fields: {
  url?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}): CallbackRequest {
  return {
    url: fields.url ?? 'https://herald.test/v1/webhooks/test',
    method: fields.method ?? 'POST',
    headers: new Headers(fields.headers ?? {}),
    body: fields.body ?? '',
  };
}

/** A refusal, as every verifier answers one. */
export const refused = (reason: string): VerifyResult => ({ ok: false, reason });

/** Timestamps just outside the 5 minute tolerance, on either side, as seconds from now. */
export const STALE_OFFSETS_SECONDS: [string, number][] = [
  ['6 minutes old', -360],
  ['6 minutes in the future', 360],
];

/** DER INTEGER of an unsigned big-endian number: minimal, with a 0x00 pad when the high bit is set. */
function derInteger(bytes: Uint8Array): number[] {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = Array.from(bytes.subarray(start));
  if ((value[0] ?? 0) & 0x80) value.unshift(0);
  return [0x02, value.length, ...value];
}

/** Encodes WebCrypto's r||s signature the way SendGrid sends it: SEQUENCE { INTEGER r, INTEGER s }. */
export function p1363ToDer(raw: Uint8Array): Uint8Array {
  const body = [...derInteger(raw.subarray(0, 32)), ...derInteger(raw.subarray(32))];
  return Uint8Array.from([0x30, body.length, ...body]);
}

/** A SendGrid-style signing key pair: the private key to sign events, the public key as the env takes it (base64 SPKI). */
export async function sendgridSigningKey(): Promise<{ privateKey: CryptoKey; publicKeyBase64: string }> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey('spki', pair.publicKey)) as ArrayBuffer);
  return { privateKey: pair.privateKey, publicKeyBase64: base64(spki) };
}
