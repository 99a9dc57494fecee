// Byte encodings used across Herald: base64 (standard and url-safe, RFC 4648) and hex.

/** Standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Base64url without padding (RFC 4648 section 5). */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Forgiving decoding of what others send us: standard or url-safe alphabet, padded or not,
 * white space ignored. Undefined when the text is not base64.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  const standard = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(standard) || standard.length % 4 === 1) return undefined;
  try {
    const binary = atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, '='));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Strict decoding of what we wrote ourselves: only the canonical base64url spelling (unused
 * trailing bits zero, no padding), so no two strings decode to the same bytes and a signed token
 * cannot be re-spelled.
 */
export function fromBase64UrlStrict(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const bytes = fromBase64(text);
  return bytes && toBase64Url(bytes) === text ? bytes : undefined;
}

/** Lowercase hex of bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
