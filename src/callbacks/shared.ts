// Helpers shared by the callback verifiers: secrets, encodings, HMAC, clocks, defensive reading.
import { timingSafeEqualStrings } from '../lib/crypto';
import { type CallbackEvent, REPLAY_CHECK_UNAVAILABLE, type ReplayGuard, type VerifyResult } from './types';

/** Callbacks older (or further in the future) than this are refused: 5 minutes, as Svix and Stripe do. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

/** A replay key only has to outlive the window in which its timestamp would still be accepted. */
export const REPLAY_TTL_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS;

/** Ids echoed back by providers are short; anything longer is not one of ours. */
const MAX_ID_CHARS = 256;

const encoder = new TextEncoder();

export const accept = (): VerifyResult => ({ ok: true });
export const refuse = (reason: string): VerifyResult => ({ ok: false, reason });

/** Reads a string var; empty or blank strings count as unset. */
export function readSecret(env: Record<string, unknown>, name: string): string | undefined {
  const value = env[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Runs a verifier so that garbage input (a URL that does not parse, a body that is not JSON, a
 * key WebCrypto will not import) refuses the callback instead of throwing: never a crash.
 */
export async function neverThrows(verify: () => Promise<VerifyResult>): Promise<VerifyResult> {
  try {
    return await verify();
  } catch {
    return refuse('unverifiable request');
  }
}

/**
 * Spends `key` on the replay guard (when there is one): refuses a key already seen, and refuses
 * with REPLAY_CHECK_UNAVAILABLE when the store fails, so the caller can answer 503 and the
 * provider retries later instead of the event being dropped as forged.
 */
export async function spendOnce(replay: ReplayGuard | undefined, key: string): Promise<VerifyResult> {
  if (!replay) return accept();
  try {
    return (await replay.seen(key, REPLAY_TTL_SECONDS)) ? refuse('replayed') : accept();
  } catch {
    return refuse(REPLAY_CHECK_UNAVAILABLE);
  }
}

/** Same for parsers: a verified but unreadable body yields no events rather than an exception. */
export function parseSafely(parse: () => CallbackEvent[]): CallbackEvent[] {
  try {
    return parse();
  } catch {
    return [];
  }
}

/** Constant-time string comparison (both sides hashed first, so lengths do not leak either). */
export const constantTimeEqual = timingSafeEqualStrings;

/** Compares `expected` with each candidate in constant time per candidate; true when one matches. */
export async function matchesAny(expected: string, candidates: readonly string[]): Promise<boolean> {
  const results = await Promise.all(candidates.map((candidate) => constantTimeEqual(expected, candidate)));
  return results.includes(true);
}

export type HmacHash = 'MD5' | 'SHA-1' | 'SHA-256' | 'SHA-512';

/** HMAC of a UTF-8 message. MD5 is a workerd extension to WebCrypto, needed for Vonage's MD5 HMAC. */
export async function hmac(hash: HmacHash, key: string | Uint8Array, message: string): Promise<Uint8Array> {
  const keyBytes = typeof key === 'string' ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(message)));
}

export async function digest(hash: 'MD5' | 'SHA-256', message: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(hash, encoder.encode(message)));
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Parses whole Unix seconds written as digits only (no sign, exponent or fraction). */
export function parseUnixSeconds(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,12}$/.test(text.trim())) return undefined;
  return Number(text.trim());
}

/** True when `seconds` is within the tolerance of `nowMs`, on either side. */
export function isFresh(seconds: number, nowMs: number): boolean {
  return Math.abs(nowMs / 1000 - seconds) <= TIMESTAMP_TOLERANCE_SECONDS;
}

/** Reads a property of an unknown value as a plain object, or undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A non-empty string field, trimmed and capped, or undefined. */
export function stringField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed !== '' && trimmed.length <= MAX_ID_CHARS ? trimmed : undefined;
}

/** A string or number field as text (providers are inconsistent about codes). */
export function codeField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && /^[A-Za-z0-9_.-]{1,40}$/.test(value.trim()) ? value.trim() : undefined;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** ISO 8601 from Unix seconds (fractions allowed); undefined for anything else. */
export function isoFromUnixSeconds(value: unknown): string | undefined {
  const seconds = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return undefined;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** ISO 8601 from a date string the provider sent (any offset); undefined when it does not parse. */
export function isoFromDateString(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** Builds an event, leaving out the optional fields that have no value. */
export function event(status: CallbackEvent['status'], fields: Omit<CallbackEvent, 'status'>): CallbackEvent {
  const result: CallbackEvent = { status };
  if (fields.deliveryId) result.deliveryId = fields.deliveryId;
  if (fields.providerMessageId) result.providerMessageId = fields.providerMessageId;
  if (fields.reason) result.reason = fields.reason;
  if (fields.suppressAddress) result.suppressAddress = true;
  if (fields.occurredAt) result.occurredAt = fields.occurredAt;
  return result;
}

type EventFields = Omit<CallbackEvent, 'status'>;

/**
 * The provider's events that map straight to a status with nothing more to read, as data: the
 * event for `name` when the table has it, undefined otherwise (the caller handles the rest).
 */
export function plainEvent(
  table: Readonly<Record<string, CallbackEvent['status']>>,
  name: unknown,
  fields: EventFields,
): CallbackEvent | undefined {
  const status = typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
  return status ? event(status, fields) : undefined;
}

/** How an SMS provider's error codes read: which one is a STOP, which prove the number dead. */
export interface SmsErrorCodes {
  optedOut: string;
  permanentAddress: ReadonlySet<string>;
}

/** A failed SMS: the STOP code is an unsubscribe; an error proving the number dead suppresses it. */
export function smsFailureEvent(
  codes: SmsErrorCodes,
  code: string | undefined,
  fields: EventFields & { reason: string },
): CallbackEvent {
  if (code === codes.optedOut) return event('unsubscribed', fields);
  const suppressAddress = code !== undefined && codes.permanentAddress.has(code);
  return event('failed', { ...fields, suppressAddress });
}

/** Reads a form-encoded or JSON body into string params (JSON scalars are stringified). */
export function readParams(body: string, contentType: string | null): URLSearchParams {
  const looksJson = (contentType ?? '').toLowerCase().includes('json') || body.trimStart().startsWith('{');
  if (!looksJson) return new URLSearchParams(body);
  const params = new URLSearchParams();
  const record = asRecord(parseJson(body));
  for (const [key, value] of Object.entries(record ?? {})) {
    if (typeof value === 'string') params.append(key, value);
    else if (typeof value === 'number' || typeof value === 'boolean') params.append(key, String(value));
  }
  return params;
}
