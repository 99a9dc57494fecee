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
 *
 * Rotation: tokens are always signed with the current secret, and verified with the current one
 * and then each previous one still listed (`verificationSecrets`), so links already sent keep
 * working while a new secret takes over.
 */

export type TokenPayload = Record<string, string | number>;

const VERSION = 1;
const RESERVED_KEYS = new Set(['v', 'exp']);
const MAC_BYTES = 32;
/** Far above any real token; stops a hostile URL from making us hash megabytes. */
const MAX_TOKEN_LENGTH = 4096;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Previous secrets tried at most: each costs a forged token one more HMAC. */
export const MAX_PREVIOUS_SECRETS = 5;

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
 * The secrets a token is verified with: `current` first, then each of `previous` (comma-separated,
 * blanks ignored, at most MAX_PREVIOUS_SECRETS), without repeats. Empty when `current` is unset:
 * nothing is signed then, and nothing verifies.
 */
export function verificationSecrets(current: string | undefined, previous: string | undefined): string[] {
  if (typeof current !== 'string' || current === '') return [];
  const older = (typeof previous === 'string' ? previous.split(',') : [])
    .map((secret) => secret.trim())
    .filter((secret) => secret !== '')
    .slice(0, MAX_PREVIOUS_SECRETS);
  return [...new Set([current, ...older])];
}

/**
 * The payload (without `v` and `exp`) when `token` was signed for `purpose` with `secret` (or with
 * any of a list of secrets: the current one and those it replaced) and has not expired at `nowMs`;
 * null for anything else. Never throws for any `token` value.
 */
export async function verifyToken(
  secret: string | readonly string[],
  purpose: string,
  token: unknown,
  nowMs: number,
): Promise<TokenPayload | null> {
  try {
    const secrets = (typeof secret === 'string' ? [secret] : secret).filter((s) => s !== '');
    if (secrets.length === 0 || !purpose || typeof token !== 'string') return null;
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) return null;
    const [payloadPart = '', macPart = ''] = token.split('.');
    const mac = fromBase64UrlStrict(macPart);
    if (!mac || mac.length !== MAC_BYTES) return null;
    if (!(await signedByAny(secrets, mac, encoder.encode(`${purpose}.${payloadPart}`)))) return null;
    // Only authenticated bytes are parsed from here on.
    const json = fromBase64UrlStrict(payloadPart);
    if (!json) return null;
    return readPayload(JSON.parse(decoder.decode(json)), nowMs);
  } catch {
    return null;
  }
}

/** True when `mac` is the HMAC of `data` under one of `secrets` (each compared in constant time). */
async function signedByAny(secrets: readonly string[], mac: Uint8Array, data: Uint8Array): Promise<boolean> {
  for (const secret of secrets) {
    if (await crypto.subtle.verify('HMAC', await hmacKey(secret, 'verify'), mac, data)) return true;
  }
  return false;
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
