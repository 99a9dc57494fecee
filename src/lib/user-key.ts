import { fromBase64UrlStrict, toBase64Url } from './encoding';
import { DecryptError, type FieldCipher, openGcm, sealGcm } from './field-crypto';

/**
 * A user's own key (AES-256-GCM). The archive seals a user's personal fields with it, on top of
 * their encryption under `DATA_ENCRYPTION_KEY`; erasure deletes the key, and every archived copy
 * becomes unreadable without touching the archive's objects (crypto-shredding).
 *
 * Stored wrapped: its raw bytes encrypted under `DATA_ENCRYPTION_KEY` with the user id as
 * associated data, so a wrapped key copied to another user fails to open.
 * Sealed form: `usr:v1:<base64url(iv || ciphertext || tag)>`.
 */
const SEALED_PREFIX = 'usr:v1:';
const KEY_BYTES = 32;

export class UserKey {
  private constructor(private readonly key: CryptoKey) {}

  /** A fresh key's wrapped form, for storing (it is used once read back from storage). */
  static async generate(userId: string, cipher: FieldCipher): Promise<{ wrapped: string }> {
    const raw = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
    return { wrapped: await cipher.encrypt(toBase64Url(raw), wrapAad(userId)) };
  }

  /**
   * Opens a stored key.
   * @throws DecryptError when it does not open (tampered, another user's, or its key dropped).
   */
  static async unwrap(userId: string, wrapped: string, cipher: FieldCipher): Promise<UserKey> {
    const raw = fromBase64UrlStrict(await cipher.decrypt(wrapped, wrapAad(userId)));
    if (!raw || raw.length !== KEY_BYTES) throw new DecryptError('malformed user key');
    return UserKey.fromRaw(raw);
  }

  private static async fromRaw(raw: Uint8Array): Promise<UserKey> {
    return new UserKey(await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']));
  }

  async seal(plain: string, aad: string): Promise<string> {
    return `${SEALED_PREFIX}${await sealGcm(this.key, plain, aad)}`;
  }

  /** @throws DecryptError when `value` is not sealed, or not with this key and `aad`. */
  async open(value: string, aad: string): Promise<string> {
    if (!isSealed(value)) throw new DecryptError('not a sealed value');
    return openGcm(this.key, value.slice(SEALED_PREFIX.length), aad);
  }
}

/** True for a value sealed with a user key. */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

/** The associated data of a wrapped key: the user it belongs to. */
export function wrapAad(userId: string): string {
  return `user_keys:${userId}`;
}
