import type { Env } from '../../config/env';
import type { Address } from '../../domain/address';
import type { Channel } from '../../domain/channels';
import { fromBase64, toBase64Url } from '../../lib/encoding';
import { log } from '../../lib/log';
import { keyOf, type SuppressionKey } from '../../storage/suppressions-repo';
import type { Services } from '../container';

/**
 * The suppression list: addresses Herald will not send to again on a channel (hard bounces,
 * complaints, unsubscribes reported by providers). Only a keyed hash of each address is stored:
 * base64url HMAC-SHA256 of `<channel>:<normalised address>`, with a key derived (HKDF-SHA256, info
 * `herald suppression list`) from BLIND_INDEX_KEY (32+ bytes of base64, as for field encryption)
 * when set, else from SIGNING_SECRET. Changing that secret orphans every stored entry.
 */

/** A channel and the address on it as plain text (email, E.164 phone, device token, URL, chat id). */
export interface AddressValue {
  channel: Channel;
  value: string;
}

/** Neither BLIND_INDEX_KEY nor SIGNING_SECRET is usable: nothing can be written to the list. */
export class SuppressionKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuppressionKeyError';
  }
}

/** Services carry the env; an Env is recognised by its D1 binding. */

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
/** Imported keys per secret, per isolate (a deployment has one or two secrets: bounded). */
const hashKeys = new Map<string, Promise<CryptoKey>>();

/** The HMAC key, or null when neither secret is set. @throws SuppressionKeyError for a malformed BLIND_INDEX_KEY */
function hashKey(env: Env): Promise<CryptoKey> | null {
  const blind = typeof env.BLIND_INDEX_KEY === 'string' ? env.BLIND_INDEX_KEY.trim() : '';
  const signing = typeof env.SIGNING_SECRET === 'string' ? env.SIGNING_SECRET : '';
  const id = blind ? `blind:${blind}` : signing ? `signing:${signing}` : null;
  if (!id) return null;
  let key = hashKeys.get(id);
  if (!key) {
    const material = blind ? decodeBlindIndexKey(blind) : encoder.encode(signing);
    key = deriveKey(material);
    if (hashKeys.size >= 4) hashKeys.clear();
    hashKeys.set(id, key);
  }
  return key;
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
  const key = hashKey(env);
  if (!key)
    throw new SuppressionKeyError('set BLIND_INDEX_KEY or SIGNING_SECRET to use the suppression list');
  return key;
}

/** The stored key of an address. @throws SuppressionKeyError when no secret is configured */
export async function suppressionKeyOf(services: Services, address: AddressValue): Promise<SuppressionKey> {
  const key = await requireKey(services.env);
  return { channel: address.channel, addressHash: await hashWith(key, address) };
}

/**
 * Which of `addresses` are on the suppression list, as `suppressionKey(channel, value)` entries of
 * the inputs: ONE D1 query for the whole batch. Without any key configured nothing can have been
 * written, so the answer is empty (and a warning is logged).
 */
export async function suppressedAddresses(
  services: Services,
  addresses: readonly AddressValue[],
): Promise<Set<string>> {
  if (addresses.length === 0) return new Set();
  const keyPromise = hashKey(services.env);
  if (!keyPromise) {
    log('warn', 'suppressions.no_key', { message: 'BLIND_INDEX_KEY and SIGNING_SECRET are unset' });
    return new Set();
  }
  const key = await keyPromise;
  const hashed = await Promise.all(
    addresses.map(async (address) => ({ address, addressHash: await hashWith(key, address) })),
  );
  const found = await services.suppressions.findSuppressed(
    hashed.map(({ address, addressHash }) => ({ channel: address.channel, addressHash })),
  );
  const out = new Set<string>();
  for (const { address, addressHash } of hashed)
    if (found.has(keyOf(address.channel, addressHash)))
      out.add(suppressionKey(address.channel, address.value));
  return out;
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

/** Lifts a suppression. */
export async function unsuppressAddress(services: Services, address: AddressValue): Promise<void> {
  await services.suppressions.deleteStatement(await suppressionKeyOf(services, address)).run();
}
