// Helpers shared by the push providers (APNs, FCM, Web Push): message options, reasons, encodings.
import type { Priority } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';

/** Push calls are short; a hung push service must not hold the queue consumer. */
export const PUSH_TIMEOUT_MS = 10_000;

/** How long a push service keeps an undelivered notification when the template does not say. */
export const DEFAULT_TTL_SECONDS = 86_400;

/** FCM's documented maximum TTL (4 weeks); also a sane cap for APNs and Web Push. */
export const MAX_TTL_SECONDS = 2_419_200;

/** Keys in `message.json` that steer delivery instead of travelling as app data. */
export const CONTROL_KEYS = ['collapseId', 'ttlSeconds'] as const;

const encoder = new TextEncoder();

/** Delivery options every push platform understands, derived once from the rendered message. */
export interface PushOptions {
  /** App data: `message.json` without the control keys; non-object json carries no data. */
  data: Record<string, unknown>;
  /** Groups notifications so a newer one replaces an older one on the device. */
  collapseId?: string;
  ttlSeconds: number;
  /** Critical and high priority wake the device now; normal and low may be batched. */
  urgent: boolean;
}

/** Splits `message.json` into app data and the delivery options (`collapseId`, `ttlSeconds`). */
export function pushOptions(message: RenderedMessage, priority: Priority): PushOptions {
  const json = isPlainObject(message.json) ? message.json : {};
  const data = Object.fromEntries(
    Object.entries(json).filter(([key]) => !(CONTROL_KEYS as readonly string[]).includes(key)),
  );
  const collapseId =
    typeof json.collapseId === 'string' && json.collapseId !== '' ? json.collapseId : undefined;
  return {
    data,
    ...(collapseId ? { collapseId } : {}),
    ttlSeconds: ttlFrom(json.ttlSeconds),
    urgent: priority === 'critical' || priority === 'high',
  };
}

function ttlFrom(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return DEFAULT_TTL_SECONDS;
  return Math.min(MAX_TTL_SECONDS, Math.max(0, Math.floor(value)));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export { networkFailure, shortReason } from '../http-call';

/** Accepts a PEM as stored in a secret: real newlines, escaped `\n`, or a bare base64 body. */
export function normalizePem(value: string, label = 'PRIVATE KEY'): string {
  const unescaped = value.replace(/\\n/g, '\n').replace(/\r/g, '').trim();
  if (unescaped.includes('-----BEGIN')) return unescaped;
  const body = unescaped.replace(/\s+/g, '');
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
}

/** UTF-8 byte length, which is what push services count. */
export function byteLength(text: string): number {
  return encoder.encode(text).byteLength;
}

/** SHA-256 of a string. */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Base64url without padding (RFC 4648 section 5). */
export function base64UrlEncode(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes base64url (or standard base64, padded or not); undefined when it is not base64. */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  const standard = text.trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(standard) || standard.length % 4 === 1) return undefined;
  try {
    const binary = atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, '='));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** Drops a trailing slash so `${base}/path` never doubles it. */
export function trimTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
