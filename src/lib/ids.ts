const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A prefixed, time-ordered id (`dlv_01j...`): 10 Crockford base32 characters of milliseconds,
 * then 16 random ones (80 bits). Sorting by id sorts by creation time.
 */
export function newId(prefix: string, nowMs = Date.now()): string {
  const time = encodeTime(nowMs);
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let random = '';
  for (const byte of bytes) random += ALPHABET[byte % 32];
  return `${prefix}_${time}${random}`;
}

function encodeTime(ms: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(ms));
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** The smallest id created at `ms`: `id >= idBoundAt(p, a) AND id < idBoundAt(p, b)` selects a time range. */
export function idBoundAt(prefix: string, ms: number): string {
  return `${prefix}_${encodeTime(ms)}`;
}
