import { fromBase64, fromBase64UrlStrict, toBase64Url } from './encoding';

/**
 * Encryption at rest for personal data fields (emails, phone numbers, device tokens, URLs).
 *
 * Stored form: `enc:v1:<kid>:<base64url(iv || ciphertext || tag)>`, AES-256-GCM with a fresh random
 * 96-bit IV per value and a 128-bit tag (https://developer.mozilla.org/en-US/docs/Web/API/AesGcmParams).
 * The caller's `aad` (say `contacts.email:<contact id>`) is the GCM additional data, so a
 * ciphertext copied into another row or column fails to decrypt.
 *
 * Keys (secret `DATA_ENCRYPTION_KEY`): `kid1:base64key,kid2:base64key`, each key 32 bytes in
 * standard or url-safe base64. The FIRST entry encrypts; every entry decrypts. To rotate,
 * PREPEND a new key (`generateKeySpec`), re-encrypt rows for which `needsRotation` is true, then
 * drop retired keys from the middle of the list.
 *
 * Blind indexes (HMAC-SHA256 of a normalised value, for equality lookups without plain text) must
 * never change when data keys rotate, or every stored index would stop matching. Their key is
 * derived with HKDF-SHA256 (RFC 5869, https://www.rfc-editor.org/rfc/rfc5869; empty salt, info
 * `herald blind index`) from:
 *   1. `BLIND_INDEX_KEY` (32+ bytes of base64) when set: recommended, fully independent; else
 *   2. the LAST entry of `DATA_ENCRYPTION_KEY`: the oldest key, since rotation prepends. Keep that
 *      entry listed for as long as indexes built from it are in use.
 */

const PREFIX = 'enc:';
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const KIND = /^[a-z0-9_-]{1,32}$/;
const BLIND_INDEX_INFO = 'herald blind index';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A stored value could not be decrypted. The message never contains plain or cipher text. */
export class DecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptError';
  }
}

/** A key secret is malformed. The message names the entry's position, never its content. */
export class KeyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyConfigError';
  }
}

/** Encrypts, decrypts and blind-indexes field values with keys from Worker secrets. */
export class FieldCipher {
  private constructor(
    private readonly currentKid: string,
    private readonly keys: ReadonlyMap<string, CryptoKey>,
    private readonly indexKey: CryptoKey,
  ) {}

  /**
   * Builds a cipher from `DATA_ENCRYPTION_KEY` and, optionally, `BLIND_INDEX_KEY`.
   * @throws KeyConfigError when either is malformed.
   */
  static async fromSecret(dataKeys: string, blindIndexKey?: string): Promise<FieldCipher> {
    const entries = parseKeyList(dataKeys);
    const keys = new Map<string, CryptoKey>();
    for (const { kid, raw } of entries) {
      keys.set(kid, await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']));
    }
    const indexMaterial =
      blindIndexKey === undefined || blindIndexKey.trim() === ''
        ? (entries.at(-1) as KeyEntry).raw
        : parseBlindIndexKey(blindIndexKey);
    const current = (entries[0] as KeyEntry).kid;
    return new FieldCipher(current, keys, await deriveIndexKey(indexMaterial));
  }

  /** Encrypts with the current key. `aad` must be given again, identical, to decrypt. */
  async encrypt(plain: string, aad?: string): Promise<string> {
    const body = await sealGcm(this.keys.get(this.currentKid) as CryptoKey, plain, aad);
    return `${PREFIX}${VERSION}:${this.currentKid}:${body}`;
  }

  /**
   * Decrypts a stored value. A value without the `enc:` prefix is returned unchanged: rows written
   * before encryption was turned on stay readable.
   * @throws DecryptError when the value is malformed, its key is unknown, or authentication fails
   *   (tampered data, wrong key, or different `aad`).
   */
  async decrypt(value: string, aad?: string): Promise<string> {
    if (!isEncrypted(value)) return value;
    const parts = value.split(':');
    if (parts.length !== 4) throw new DecryptError('malformed encrypted value');
    const [, version, kid = '', data = ''] = parts;
    if (version !== VERSION) throw new DecryptError('unsupported encrypted value version');
    const key = this.keys.get(kid);
    if (!key) throw new DecryptError(`no key with id "${KID.test(kid) ? kid : '?'}" is configured`);
    return openGcm(key, data, aad);
  }

  /** True when `value` is not encrypted under the current key (plain text, an older key, or malformed). */
  needsRotation(value: string): boolean {
    if (!isEncrypted(value)) return true;
    const parts = value.split(':');
    return parts.length !== 4 || parts[1] !== VERSION || parts[2] !== this.currentKid;
  }

  /**
   * A deterministic keyed hash (base64url HMAC-SHA256) of `value` for equality lookups. `kind`
   * (lower-case letters, digits, `_`, `-`) separates domains, so an email and a phone number
   * never share an index. Emails are trimmed and lower-cased; other kinds are hashed as given.
   */
  async blindIndex(kind: string, value: string): Promise<string> {
    if (!KIND.test(kind)) throw new TypeError('blindIndex: kind must match [a-z0-9_-]{1,32}');
    const normalised = kind === 'email' ? value.trim().toLowerCase() : value;
    const mac = await crypto.subtle.sign('HMAC', this.indexKey, encoder.encode(`${kind}:${normalised}`));
    return toBase64Url(new Uint8Array(mac));
  }
}

/** True for a value in the stored encrypted form (whether or not it would decrypt). */
export function isEncrypted(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** A fresh `kid:base64key` entry for `DATA_ENCRYPTION_KEY` (used by the rotate-key script). */
export function generateKeySpec(kid: string): string {
  if (!KID.test(kid)) throw new KeyConfigError('key id must match [A-Za-z0-9_-]{1,32}');
  const raw = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  let binary = '';
  for (const byte of raw) binary += String.fromCharCode(byte);
  return `${kid}:${btoa(binary)}`;
}

interface KeyEntry {
  kid: string;
  raw: Uint8Array;
}

function parseKeyList(secret: string): KeyEntry[] {
  if (typeof secret !== 'string' || secret.trim() === '') {
    throw new KeyConfigError('DATA_ENCRYPTION_KEY is empty: expected kid:base64key[,kid:base64key...]');
  }
  const entries: KeyEntry[] = [];
  const seen = new Set<string>();
  secret.split(',').forEach((item, index) => {
    const where = `DATA_ENCRYPTION_KEY entry ${index + 1}`;
    const entry = item.trim();
    const colon = entry.indexOf(':');
    if (colon < 0) throw new KeyConfigError(`${where}: expected kid:base64key`);
    const kid = entry.slice(0, colon);
    if (!KID.test(kid)) throw new KeyConfigError(`${where}: key id must match [A-Za-z0-9_-]{1,32}`);
    if (seen.has(kid)) throw new KeyConfigError(`${where}: duplicate key id "${kid}"`);
    const raw = fromBase64(entry.slice(colon + 1));
    if (!raw || raw.length !== KEY_BYTES) {
      throw new KeyConfigError(`${where} ("${kid}"): key must be ${KEY_BYTES} bytes of base64`);
    }
    seen.add(kid);
    entries.push({ kid, raw });
  });
  return entries;
}

function parseBlindIndexKey(secret: string): Uint8Array {
  const raw = fromBase64(secret.trim());
  if (!raw || raw.length < KEY_BYTES) {
    throw new KeyConfigError(`BLIND_INDEX_KEY: must be at least ${KEY_BYTES} bytes of base64`);
  }
  return raw;
}

async function deriveIndexKey(material: Uint8Array): Promise<CryptoKey> {
  // https://developer.mozilla.org/en-US/docs/Web/API/HkdfParams
  const ikm = await crypto.subtle.importKey('raw', material, 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode(BLIND_INDEX_INFO) },
    ikm,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  );
}

/** AES-256-GCM with a fresh random IV: base64url(iv || ciphertext || tag). */
export async function sealGcm(key: CryptoKey, plain: string, aad?: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(gcmParams(iv, aad), key, encoder.encode(plain));
  const body = new Uint8Array(IV_BYTES + sealed.byteLength);
  body.set(iv);
  body.set(new Uint8Array(sealed), IV_BYTES);
  return toBase64Url(body);
}

/**
 * Opens what `sealGcm` sealed.
 * @throws DecryptError when it is malformed or authentication fails (tampered, wrong key or aad).
 */
export async function openGcm(key: CryptoKey, data: string, aad?: string): Promise<string> {
  const body = fromBase64UrlStrict(data);
  if (!body || body.length < IV_BYTES + TAG_BYTES) throw new DecryptError('malformed encrypted value');
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      gcmParams(body.subarray(0, IV_BYTES), aad),
      key,
      body.subarray(IV_BYTES),
    );
  } catch {
    throw new DecryptError('authentication failed: tampered data, wrong key or wrong associated data');
  }
  try {
    return decoder.decode(plain);
  } catch {
    throw new DecryptError('decrypted value is not UTF-8');
  }
}

function gcmParams(iv: Uint8Array, aad: string | undefined): SubtleCryptoEncryptAlgorithm {
  return aad === undefined
    ? { name: 'AES-GCM', iv, tagLength: TAG_BYTES * 8 }
    : { name: 'AES-GCM', iv, additionalData: encoder.encode(aad), tagLength: TAG_BYTES * 8 };
}
