import { fromBase64UrlStrict, toBase64Url } from './encoding';
/**
 * Compact signed tokens for URLs (unsubscribe links, open pixels, click redirects).
 *
 *   token = base64url(JSON payload) "." base64url(HMAC-SHA256(secret, purpose "." payloadPart))
 *
 * The payload is readable by anyone holding the URL, so it must carry ids only, never personal
 * data. It gets a format version `v` and, when asked, an expiry `exp` (epoch seconds). The purpose
 * ('unsubscribe', 'open', 'click') is part of the MAC input but not of the token, so a token minted
 * for one purpose never verifies for another. base64url is RFC 4648 section 5 without padding
 * (https://www.rfc-editor.org/rfc/rfc4648#section-5); the MAC is checked with
 * `crypto.subtle.verify`, which compares in constant time
 * (https://developer.mozilla.org/en-US/docs/Web/API/SubtleCrypto/verify).
 */

export type TokenPayload = Record<string, string | number>;

const VERSION = 1;
const RESERVED_KEYS = new Set(['v', 'exp']);
const MAC_BYTES = 32;
/** Far above any real token; stops a hostile URL from making us hash megabytes. */
const MAX_TOKEN_LENGTH = 4096;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Signs `payload` for `purpose`. Keys `v` and `exp` are reserved; numbers must be finite.
 * `expiresAtMs` is rounded down to whole seconds so a token never outlives the time asked for.
 * @throws TypeError on an empty secret or purpose, a reserved key or an unencodable value.
 */
export async function signToken(
  secret: string,
  purpose: string,
  payload: TokenPayload,
  options: { expiresAtMs?: number } = {},
): Promise<string> {
  if (!secret) throw new TypeError('signToken: secret must not be empty');
  if (!purpose) throw new TypeError('signToken: purpose must not be empty');
  const entries: Array<[string, string | number]> = [['v', VERSION]];
  for (const [key, value] of Object.entries(payload)) {
    if (RESERVED_KEYS.has(key)) throw new TypeError(`signToken: payload key "${key}" is reserved`);
    if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string') {
      throw new TypeError(`signToken: payload value "${key}" must be a string or a finite number`);
    }
    entries.push([key, value]);
  }
  if (options.expiresAtMs !== undefined) {
    if (!Number.isFinite(options.expiresAtMs)) throw new TypeError('signToken: expiresAtMs must be finite');
    entries.push(['exp', Math.floor(options.expiresAtMs / 1000)]);
  }
  // fromEntries defines own properties, so even a `__proto__` key is serialised like any other.
  const body = Object.fromEntries(entries);
  const payloadPart = toBase64Url(encoder.encode(JSON.stringify(body)));
  const key = await hmacKey(secret, 'sign');
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${purpose}.${payloadPart}`));
  return `${payloadPart}.${toBase64Url(new Uint8Array(mac))}`;
}

/**
 * The payload (without `v` and `exp`) when `token` was signed with `secret` for `purpose` and has
 * not expired at `nowMs`; null for anything else. Never throws for any `token` value.
 */
export async function verifyToken(
  secret: string,
  purpose: string,
  token: unknown,
  nowMs: number,
): Promise<TokenPayload | null> {
  try {
    if (!secret || !purpose || typeof token !== 'string') return null;
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) return null;
    const [payloadPart = '', macPart = ''] = token.split('.');
    const mac = fromBase64UrlStrict(macPart);
    if (!mac || mac.length !== MAC_BYTES) return null;
    const key = await hmacKey(secret, 'verify');
    const authentic = await crypto.subtle.verify(
      'HMAC',
      key,
      mac,
      encoder.encode(`${purpose}.${payloadPart}`),
    );
    if (!authentic) return null;
    // Only authenticated bytes are parsed from here on.
    const json = fromBase64UrlStrict(payloadPart);
    if (!json) return null;
    return readPayload(JSON.parse(decoder.decode(json)), nowMs);
  } catch {
    return null;
  }
}

function readPayload(parsed: unknown, nowMs: number): TokenPayload | null {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const { v, exp, ...rest } = parsed as Record<string, unknown>;
  if (v !== VERSION) return null;
  if (exp !== undefined && (typeof exp !== 'number' || !(nowMs < exp * 1000))) return null;
  const entries = Object.entries(rest);
  if (!entries.every(([, value]) => typeof value === 'string' || typeof value === 'number')) return null;
  // fromEntries defines own properties, so even a `__proto__` key stays plain data.
  return Object.fromEntries(entries) as TokenPayload;
}

function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    usage,
  ]);
}
