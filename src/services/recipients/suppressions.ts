import type { Env } from '../../config/env';
import type { Address } from '../../domain/address';
import type { Channel } from '../../domain/channels';
import { fromBase64, toBase64Url } from '../../lib/encoding';
import { log } from '../../lib/log';
import { verificationSecrets } from '../../lib/signed-token';
import { keyOf, type SuppressionKey } from '../../storage/suppressions-repo';
import type { Services } from '../container';

/**
 * The suppression list: addresses Herald will not send to again on a channel (hard bounces,
 * complaints, unsubscribes reported by providers). Only a keyed hash of each address is stored:
 * base64url HMAC-SHA256 of `<channel>:<normalised address>`, with a key derived (HKDF-SHA256, info
 * `herald suppression list`) from BLIND_INDEX_KEY (32+ bytes of base64). That key is its own:
 * rotating SIGNING_SECRET never touches the list. BLIND_INDEX_KEY is required in production and
 * staging (the env refuses to start without it); development and test fall back to the public
 * DEVELOPMENT_BLIND_INDEX_KEY.
 *
 * Transition: versions before BLIND_INDEX_KEY was required derived the key from SIGNING_SECRET
 * when BLIND_INDEX_KEY was unset. Lookups therefore also hash with the keys derived from
 * SIGNING_SECRET and each SIGNING_SECRET_PREVIOUS, so upgrading (and a later signing rotation that
 * lists the old secret as previous) empties nothing. An entry found only under such a legacy key
 * is copied under BLIND_INDEX_KEY (its reason and time kept) the first time it is found, so the
 * entries still in use move over by themselves. Writes use BLIND_INDEX_KEY only; a lifted
 * suppression is removed under every key.
 */
/** A channel and the address on it as plain text (email, E.164 phone, device token, URL, chat id). */
export interface AddressValue {
  channel: Channel;
  value: string;
}

/** BLIND_INDEX_KEY is unset (outside development and test) or malformed: nothing can be written. */
export class SuppressionKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuppressionKeyError';
  }
}

/** The plain address value a delivery is sent to, or null when it has none. */
export function addressValue(address: Address): AddressValue | null {
  switch (address.channel) {
    case 'email':
      return { channel: 'email', value: address.email };
    case 'sms':
      return { channel: 'sms', value: address.phone };
    case 'push':
      return { channel: 'push', value: address.deviceToken };
    case 'chat': {
      const value = address.url ?? address.chatId;
      return value ? { channel: 'chat', value } : null;
    }
    case 'webhook':
      return { channel: 'webhook', value: address.url };
    case 'inapp':
      return null; // an inbox cannot bounce
  }
}

/** Emails are trimmed and lower-cased; phones (already E.164), tokens and URLs are used as given. */
export function normaliseAddress(channel: Channel, value: string): string {
  return channel === 'email' ? value.trim().toLowerCase() : value;
}

/** The Set entry `suppressedAddresses` uses for an input address (as given, not normalised). */
export const suppressionKey = (channel: Channel, value: string) => `${channel}:${value}`;

const encoder = new TextEncoder();
const KEY_BYTES = 32;
const HKDF_INFO = 'herald suppression list';

/**
 * The blind-index key development and test use when BLIND_INDEX_KEY is unset: public (it is in
 * this file and in .dev.vars.example), so never used where ENVIRONMENT is production or staging.
 */
export const DEVELOPMENT_BLIND_INDEX_KEY = 'aGVyYWxkIGRldmVsb3BtZW50IGJsaW5kIGluZGV4ISE=';

/** Imported keys per secret, per isolate (a deployment has a handful of secrets: bounded). */
const hashKeys = new Map<string, Promise<CryptoKey>>();

function cachedKey(id: string, material: () => Uint8Array): Promise<CryptoKey> {
  let key = hashKeys.get(id);
  if (!key) {
    key = deriveKey(material());
    if (hashKeys.size >= 16) hashKeys.clear();
    hashKeys.set(id, key);
  }
  return key;
}

/**
 * The key entries are written with: BLIND_INDEX_KEY, else (development and test only) the
 * development key; null where neither applies. @throws SuppressionKeyError for a malformed key
 */
function writeKey(env: Env): Promise<CryptoKey> | null {
  const configured = typeof env.BLIND_INDEX_KEY === 'string' ? env.BLIND_INDEX_KEY.trim() : '';
  const local = env.ENVIRONMENT === 'development' || env.ENVIRONMENT === 'test';
  const blind = configured || (local ? DEVELOPMENT_BLIND_INDEX_KEY : '');
  if (!blind) return null;
  return cachedKey(`blind:${blind}`, () => decodeBlindIndexKey(blind));
}

/** The keys entries from before BLIND_INDEX_KEY may be under: from each listed signing secret. */
function legacyKeys(env: Env): Promise<CryptoKey>[] {
  return verificationSecrets(env.SIGNING_SECRET, env.SIGNING_SECRET_PREVIOUS).map((secret) =>
    cachedKey(`signing:${secret}`, () => encoder.encode(secret)),
  );
}

function decodeBlindIndexKey(text: string): Uint8Array {
  const bytes = fromBase64(text);
  if (!bytes || bytes.length < KEY_BYTES)
    throw new SuppressionKeyError(`BLIND_INDEX_KEY must be at least ${KEY_BYTES} bytes of base64`);
  return bytes;
}

async function deriveKey(material: Uint8Array): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', material, 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode(HKDF_INFO) },
    ikm,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  );
}

async function hashWith(key: CryptoKey, address: AddressValue): Promise<string> {
  const input = `${address.channel}:${normaliseAddress(address.channel, address.value)}`;
  return toBase64Url(new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(input))));
}

async function requireKey(env: Env): Promise<CryptoKey> {
  const key = writeKey(env);
  if (!key) throw new SuppressionKeyError('set BLIND_INDEX_KEY to use the suppression list');
  return key;
}

/** The stored key of an address (under BLIND_INDEX_KEY). @throws SuppressionKeyError when unset */
export async function suppressionKeyOf(services: Services, address: AddressValue): Promise<SuppressionKey> {
  const key = await requireKey(services.env);
  return { channel: address.channel, addressHash: await hashWith(key, address) };
}

/** Every key an entry of this address may be stored under: BLIND_INDEX_KEY's first, then legacy ones. */
async function candidateKeysOf(services: Services, address: AddressValue): Promise<SuppressionKey[]> {
  const write = writeKey(services.env);
  const keys = await Promise.all([...(write ? [write] : []), ...legacyKeys(services.env)]);
  const hashes = await Promise.all(keys.map((key) => hashWith(key, address)));
  return [...new Set(hashes)].map((addressHash) => ({ channel: address.channel, addressHash }));
}

/**
 * Which of `addresses` are on the suppression list, as `suppressionKey(channel, value)` entries of
 * the inputs: ONE D1 query for the whole batch, each address probed under BLIND_INDEX_KEY and under
 * the legacy keys of the signing secrets (see above). Without any key nothing can have been
 * written, so the answer is empty (and a warning is logged).
 */
export async function suppressedAddresses(
  services: Services,
  addresses: readonly AddressValue[],
): Promise<Set<string>> {
  if (addresses.length === 0) return new Set();
  const write = writeKey(services.env);
  if (!write && legacyKeys(services.env).length === 0) {
    log('warn', 'suppressions.no_key', { message: 'BLIND_INDEX_KEY and SIGNING_SECRET are unset' });
    return new Set();
  }
  const probes = await Promise.all(
    addresses.map(async (address) => ({ address, keys: await candidateKeysOf(services, address) })),
  );
  const found = await services.suppressions.findSuppressed(probes.flatMap((probe) => probe.keys));
  const out = new Set<string>();
  const legacyOnly: { current: SuppressionKey; legacy: SuppressionKey }[] = [];
  for (const { address, keys } of probes) {
    const hits = keys.filter((key) => found.has(keyOf(key.channel, key.addressHash)));
    const [hit] = hits;
    if (!hit) continue;
    out.add(suppressionKey(address.channel, address.value));
    const [current] = keys;
    if (write && current && !hits.includes(current)) legacyOnly.push({ current, legacy: hit });
  }
  if (legacyOnly.length > 0) await rekey(services, legacyOnly);
  return out;
}

/**
 * Copies entries found only under a legacy key to BLIND_INDEX_KEY, keeping their reason and time.
 * Best effort: the answer above stands either way, and the next lookup tries again.
 */
async function rekey(
  services: Services,
  entries: readonly { current: SuppressionKey; legacy: SuppressionKey }[],
): Promise<void> {
  try {
    const statements: D1PreparedStatement[] = [];
    for (const { current, legacy } of entries) {
      const stored = await services.suppressions.get(legacy);
      if (stored)
        statements.push(
          services.suppressions.insertStatement(current, stored.reason, Date.parse(stored.createdAt)),
        );
    }
    await services.commit(statements);
    log('info', 'suppressions.rekeyed', { count: statements.length });
  } catch (error) {
    log('warn', 'suppressions.rekey_failed', {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Statement adding an address to the list, to run in the caller's D1 batch. */
export async function suppressStatement(
  services: Services,
  address: AddressValue,
  reason: string,
  nowMs: number,
): Promise<D1PreparedStatement> {
  return services.suppressions.insertStatement(await suppressionKeyOf(services, address), reason, nowMs);
}

/** Adds an address to the suppression list (idempotent: the first reason stays). */
export async function suppressAddress(
  services: Services,
  address: AddressValue,
  reason: string,
  nowMs = Date.now(),
): Promise<void> {
  await (await suppressStatement(services, address, reason, nowMs)).run();
}

/** Lifts a suppression, under BLIND_INDEX_KEY and under every legacy key. */
export async function unsuppressAddress(services: Services, address: AddressValue): Promise<void> {
  const keys = await candidateKeysOf(services, address);
  await services.commit(keys.map((key) => services.suppressions.deleteStatement(key)));
}
