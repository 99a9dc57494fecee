// Message Encryption for Web Push, `aes128gcm` content coding: https://www.rfc-editor.org/rfc/rfc8291
// (record format: https://www.rfc-editor.org/rfc/rfc8188#section-2)

/** The record size written in the header: one record fills a body push services must accept. */
const RECORD_SIZE = 4096;
const SALT_BYTES = 16;
const PUBLIC_KEY_BYTES = 65;
const AUTH_SECRET_BYTES = 16;
const TAG_BYTES = 16;
/** salt (16) + record size (4) + key id length (1) + the sender's public key (65). */
const HEADER_BYTES = SALT_BYTES + 4 + 1 + PUBLIC_KEY_BYTES;

/** What one record can carry: 4096 minus header (86), delimiter (1) and tag (16) is 3993 (RFC 8291 4). */
export const MAX_PLAINTEXT_BYTES = RECORD_SIZE - HEADER_BYTES - 1 - TAG_BYTES;
const LAST_RECORD_DELIMITER = 0x02;
const encoder = new TextEncoder();

/** The browser's side of a subscription: its P-256 public key and 16-byte auth secret. */
export interface SubscriptionKeys {
  /** Uncompressed P-256 point (65 bytes, 0x04 || x || y). */
  p256dh: Uint8Array;
  auth: Uint8Array;
}

/** Fixed inputs, only for reproducing the RFC's example; production uses fresh random values. */
export interface EncryptionOverrides {
  salt?: Uint8Array;
  /** The application server's ephemeral ECDH key pair and its raw public key. */
  sender?: { privateKey: CryptoKey; publicKey: Uint8Array };
}

/** True when the keys have the sizes RFC 8291 requires (curve membership is checked on import). */
export function hasValidKeySizes(keys: SubscriptionKeys): boolean {
  return (
    keys.p256dh.byteLength === PUBLIC_KEY_BYTES &&
    keys.p256dh[0] === 0x04 &&
    keys.auth.byteLength === AUTH_SECRET_BYTES
  );
}

/**
 * Encrypts a push message for one subscription as a single `aes128gcm` record (RFC 8291 4):
 * salt || rs || idlen || as_public || AES-GCM(plaintext || 0x02). Throws RangeError when the
 * plaintext does not fit one 4096-byte body, and an error when the subscription key is not a
 * P-256 point.
 */
export async function encryptAes128gcm(
  plaintext: Uint8Array,
  keys: SubscriptionKeys,
  overrides: EncryptionOverrides = {},
): Promise<Uint8Array> {
  if (plaintext.byteLength > MAX_PLAINTEXT_BYTES) {
    throw new RangeError(
      `push payload is ${plaintext.byteLength} bytes, the limit is ${MAX_PLAINTEXT_BYTES}`,
    );
  }
  const receiverKey = await crypto.subtle.importKey(
    'raw',
    keys.p256dh,
    { name: 'ECDH', namedCurve: 'P-256' },
    false,
    [],
  );
  const sender = overrides.sender ?? (await generateSenderKeys());
  const salt = overrides.salt ?? crypto.getRandomValues(new Uint8Array(SALT_BYTES));

  // A named object, not a literal: workers-types spells the member `$public`, the runtime `public`.
  const ecdh = { name: 'ECDH', public: receiverKey };
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdh, sender.privateKey, 256));
  // key_info = "WebPush: info" || 0x00 || ua_public || as_public
  const keyInfo = concat(encoder.encode('WebPush: info\0'), keys.p256dh, sender.publicKey);
  const ikm = await hkdf(keys.auth, ecdhSecret, keyInfo, 32);
  const cek = await hkdf(salt, ikm, encoder.encode('Content-Encoding: aes128gcm\0'), 16);
  const nonce = await hkdf(salt, ikm, encoder.encode('Content-Encoding: nonce\0'), 12);

  const aesKey = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, ['encrypt']);
  const record = concat(plaintext, new Uint8Array([LAST_RECORD_DELIMITER]));
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, aesKey, record),
  );
  return concat(contentCodingHeader(salt, sender.publicKey), ciphertext);
}

/** The RFC 8188 header: salt (16) || record size (uint32 BE) || key id length (1) || key id. */
function contentCodingHeader(salt: Uint8Array, senderPublicKey: Uint8Array): Uint8Array {
  const header = new Uint8Array(SALT_BYTES + 4 + 1 + senderPublicKey.byteLength);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(SALT_BYTES, RECORD_SIZE);
  header[SALT_BYTES + 4] = senderPublicKey.byteLength;
  header.set(senderPublicKey, SALT_BYTES + 5);
  return header;
}

async function generateSenderKeys(): Promise<{ privateKey: CryptoKey; publicKey: Uint8Array }> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const publicKey = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
  return { privateKey: pair.privateKey, publicKey };
}

/** HKDF-SHA-256 (RFC 5869) extract-and-expand to `length` bytes. */
async function hkdf(
  salt: Uint8Array,
  ikm: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, length * 8),
  );
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
