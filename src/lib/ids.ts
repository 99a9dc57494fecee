const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

/** How many placement buckets an id can name (two base32 characters hold 1,024; 256 are used). */
export const ID_BUCKETS = 256;
const BUCKET_CHARS = 2;

/**
 * A prefixed, time-ordered id (`dlv_01j...`): 10 Crockford base32 characters of milliseconds,
 * then 16 random ones (80 bits). Sorting by id sorts by creation time. With `bucket` (0-255), the
 * first two of the random characters name it, so the id says where its row lives (70 random bits
 * remain); `bucketOfId` reads it back.
 */
export function newId(prefix: string, nowMs = Date.now(), bucket?: number): string {
  const time = encodeTime(nowMs);
  const bytes = crypto.getRandomValues(new Uint8Array(RANDOM_CHARS));
  let random = '';
  for (const byte of bytes) random += ALPHABET[byte % 32];
  if (bucket === undefined) return `${prefix}_${time}${random}`;
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= ID_BUCKETS)
    throw new RangeError(`bucket ${bucket}`);
  const named = `${ALPHABET[bucket >> 5]}${ALPHABET[bucket & 31]}`;
  return `${prefix}_${time}${named}${random.slice(BUCKET_CHARS)}`;
}

/**
 * The bucket an id names (see `newId`): its first two random characters, modulo ID_BUCKETS, so
 * every id of this shape maps to one bucket, those made before buckets existed too. Null for a
 * string that is not such an id.
 */
export function bucketOfId(id: string): number | null {
  const cut = id.indexOf('_');
  if (cut < 0 || id.length !== cut + 1 + TIME_CHARS + RANDOM_CHARS) return null;
  const hi = ALPHABET.indexOf(id.charAt(cut + 1 + TIME_CHARS));
  const lo = ALPHABET.indexOf(id.charAt(cut + 2 + TIME_CHARS));
  return hi < 0 || lo < 0 ? null : (hi * 32 + lo) % ID_BUCKETS;
}

/**
 * `first` and the ids after it: the random part counted up in base 32, so sorting them by id keeps
 * the order they were asked for in, and they form one primary-key range.
 */
export function idSequence(first: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => idAfter(first, i));
}

/** The id `steps` places after `id` (same prefix and time; the random part plus `steps`). */
export function idAfter(id: string, steps: number): string {
  const randomStart = id.length - RANDOM_CHARS;
  let value = 0n;
  for (const char of id.slice(randomStart)) value = value * 32n + BigInt(ALPHABET.indexOf(char));
  value += BigInt(steps);
  if (value >= 32n ** BigInt(RANDOM_CHARS)) throw new RangeError(`no id ${steps} places after ${id}`);
  let text = '';
  for (let c = 0; c < RANDOM_CHARS; c++) {
    text = ALPHABET[Number(value % 32n)] + text;
    value /= 32n;
  }
  return id.slice(0, randomStart) + text;
}

/** The creation instant (epoch ms) of an id `newId(prefix)` made, or null for any other string. */
export function idTimeMs(prefix: string, id: string): number | null {
  const pattern = new RegExp(`^${prefix}_([${ALPHABET}]{${TIME_CHARS}})[${ALPHABET}]{${RANDOM_CHARS}}$`);
  const time = pattern.exec(id)?.[1];
  if (time === undefined) return null;
  let ms = 0;
  for (const char of time) ms = ms * 32 + ALPHABET.indexOf(char);
  return ms;
}

function encodeTime(ms: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(ms));
  for (let i = 0; i < TIME_CHARS; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** The smallest id created at `ms`: `id >= idBoundAt(p, a) AND id < idBoundAt(p, b)` selects a time range. */
export function idBoundAt(prefix: string, ms: number): string {
  return `${prefix}_${encodeTime(ms)}`;
}

/**
 * An id like `newId(prefix, nowMs, bucket)` whose random part comes from `seed` (a digest of what
 * the id names) instead: the same seed always gives the same id, so writing it twice is one row.
 */
export function derivedId(prefix: string, nowMs: number, bucket: number, seed: Uint8Array): string {
  if (seed.length < RANDOM_CHARS) throw new RangeError('seed too short');
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= ID_BUCKETS)
    throw new RangeError(`bucket ${bucket}`);
  let random = '';
  for (const byte of seed.subarray(0, RANDOM_CHARS - BUCKET_CHARS)) random += ALPHABET[byte % 32];
  return `${prefix}_${encodeTime(nowMs)}${ALPHABET[bucket >> 5]}${ALPHABET[bucket & 31]}${random}`;
}
