// Test-side helpers. Signatures are computed here with WebCrypto directly, never with the code
// under test, so a test passing means two implementations of the documented algorithm agree.
import type { CallbackRequest, ReplayGuard } from '../../src/callbacks/types';

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
