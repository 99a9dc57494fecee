// Web Push: https://www.rfc-editor.org/rfc/rfc8030 (protocol), rfc8291 (encryption), rfc8292 (VAPID)
import { importJWK, SignJWT } from 'jose';
import type { Priority } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import { sha256Bytes } from '../../lib/crypto';
import { fromBase64, toBase64Url } from '../../lib/encoding';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import type { HttpAnswer } from '../http-call';
import { classOfStatus, permanent, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendResult } from '../types';
import { allowsLoopback, requireVars } from '../vars';
import { PUSH_TIMEOUT_MS, type PushRequest, pushOptions, pushProvider } from './common';
import { encryptAes128gcm, hasValidKeySizes } from './webpush-encryption';

/**
 * Web Push limits: push services must accept 4,096-byte bodies (RFC 8030 7.2), which leaves
 * 3,993 bytes of plaintext in one aes128gcm record (RFC 8291 4); a Topic is at most 32 base64url
 * characters (RFC 8030 5.4). One subscription a request; the rate is each push service's own.
 * Error answers are read only for the reason, so 512 characters of one suffice.
 */
export const WEBPUSH_LIMITS = {
  timeoutMs: PUSH_TIMEOUT_MS,
  maxBodyBytes: 4096,
  recipientsPerRequest: 1,
  fields: { payload: 3993, topic: 32 },
  answerChars: 512,
};

/** RFC 8292 2: `exp` must be at most 24 hours ahead; 12 hours leaves room for clock skew. */
export const VAPID_TOKEN_LIFETIME_SECONDS = 12 * 3600;

/** A cached VAPID JWT is replaced once it has less than this left. */
const VAPID_MIN_REMAINING_MS = 3600_000;

/** Push services are few (FCM, Mozilla, Apple, WNS hosts); the cache never grows past this. */
const VAPID_CACHE_LIMIT = 64;

/** What the Web Push provider needs: the VAPID key pair and contact. */
export interface WebPushConfig {
  /** Uncompressed P-256 public key, base64url (65 bytes): the subscription's applicationServerKey. */
  vapidPublicKey: string;
  /** The private scalar `d`, base64url (32 bytes). */
  vapidPrivateKey: string;
  /** `mailto:` or `https:` contact the push service can reach. */
  subject: string;
  /** Loopback endpoints (a local fake push service) only in development. */
  allowLoopback: boolean;
}

/** Reads VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT. */
export function webPushConfigFromEnv(env: ProviderEnv): WebPushConfig {
  const vars = requireVars(env, 'webpush', ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT']);
  const subject = vars.VAPID_SUBJECT.trim();
  if (!/^(mailto:|https:)/i.test(subject)) {
    throw new Error('VAPID_SUBJECT must be a mailto: or https: URI (RFC 8292 2.1)');
  }
  return {
    vapidPublicKey: vars.VAPID_PUBLIC_KEY.trim(),
    vapidPrivateKey: vars.VAPID_PRIVATE_KEY.trim(),
    subject,
    allowLoopback: allowsLoopback(env),
  };
}

/** A browser PushSubscription, decoded and checked. */
export interface WebPushSubscription {
  endpoint: URL;
  keys: { p256dh: Uint8Array; auth: Uint8Array };
}

/** Parses the address's deviceToken (PushSubscription JSON); the reason says what is wrong. */
export function parseSubscription(
  deviceToken: string,
  allowLoopback: boolean,
): { ok: true; subscription: WebPushSubscription } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(deviceToken);
  } catch {
    return { ok: false, reason: 'subscription is not JSON' };
  }
  const sub = value as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } } | null;
  if (typeof sub?.endpoint !== 'string') return { ok: false, reason: 'subscription has no endpoint' };
  const check = checkWebhookUrl(sub.endpoint, { allowLoopback });
  // https only, no private or internal hosts (http loopback only in development).
  if (!check.ok) return { ok: false, reason: `subscription endpoint rejected: ${check.reason}` };
  const p256dh = typeof sub.keys?.p256dh === 'string' ? fromBase64(sub.keys.p256dh) : undefined;
  const auth = typeof sub.keys?.auth === 'string' ? fromBase64(sub.keys.auth) : undefined;
  if (!p256dh || !auth || !hasValidKeySizes({ p256dh, auth })) {
    return { ok: false, reason: 'subscription keys are not a P-256 key and a 16-byte auth secret' };
  }
  return { ok: true, subscription: { endpoint: check.url, keys: { p256dh, auth } } };
}

/** RFC 8030 5.3 urgency from Herald's priority; `very-low` is left for no Herald priority. */
export function urgencyFor(priority: Priority): 'high' | 'normal' | 'low' {
  if (priority === 'critical' || priority === 'high') return 'high';
  return priority === 'low' ? 'low' : 'normal';
}

/** The notification JSON the service worker receives. */
export function webPushPayload(message: RenderedMessage, priority: Priority): string {
  const { data } = pushOptions(message, priority);
  return JSON.stringify({ title: message.title, body: message.body, url: message.url, data });
}

/**
 * The Topic for a collapse id (the template's, else the delivery id): the id itself when it is
 * short base64url, otherwise the start of its SHA-256 in base64url. A push service replaces a
 * message it still holds with a newer one of the same Topic (RFC 8030 5.4), so a repeat of a
 * delivery does not queue a second copy.
 */
export async function webPushTopicFor(collapseId: string): Promise<string> {
  const { topic } = WEBPUSH_LIMITS.fields;
  if (collapseId.length <= topic && /^[A-Za-z0-9_-]+$/.test(collapseId)) return collapseId;
  return toBase64Url(await sha256Bytes(collapseId)).slice(0, topic);
}

/** Per-delivery inputs of the request builder, produced by signing and encryption. */
export interface WebPushRequestParts {
  /** `vapid t=<jwt>, k=<public key>` (RFC 8292 3). */
  authorization: string;
  /** The aes128gcm-encrypted body (RFC 8291). */
  body: Uint8Array;
  ttlSeconds: number;
  urgency: 'high' | 'normal' | 'low';
  topic?: string;
}

/** Builds the push message request to the subscription's endpoint (pure). */
export function buildWebPushRequest(subscription: WebPushSubscription, parts: WebPushRequestParts): Request {
  const headers: Record<string, string> = {
    TTL: String(parts.ttlSeconds),
    Urgency: parts.urgency,
    'Content-Encoding': 'aes128gcm',
    'Content-Type': 'application/octet-stream',
    Authorization: parts.authorization,
  };
  if (parts.topic) headers.Topic = parts.topic;
  return new Request(subscription.endpoint.toString(), { method: 'POST', headers, body: parts.body });
}

/**
 * Maps one push service answer (pure): 404/410 the subscription is gone, 400/401/403 the VAPID
 * signature or key was refused, a 3xx is never followed so it is permanent.
 */
export function classifyWebPushAnswer(answer: HttpAnswer): SendResult {
  const { status } = answer;
  if (status === 200 || status === 201 || status === 202)
    return sent(answer.headers.get('location') ?? undefined);
  const reason = shortReason(`push service ${status} ${answer.body.slice(0, 200)}`);
  const errorClass = classOfStatus(status, {
    400: 'configError',
    404: 'invalidAddress',
    410: 'invalidAddress',
  });
  const code = status === 413 ? 'PayloadTooLarge' : String(status);
  return resultOfClass(errorClass, reason, code, answer.retryAfterSeconds);
}

/** Imports the VAPID private key for ES256; throws when the keys are not a P-256 pair encoding. */
export async function importVapidKey(config: WebPushConfig): Promise<CryptoKey> {
  const publicKey = fromBase64(config.vapidPublicKey);
  const d = fromBase64(config.vapidPrivateKey);
  if (publicKey?.byteLength !== 65 || publicKey[0] !== 0x04 || d?.byteLength !== 32) {
    throw new Error('VAPID keys must be a 65-byte uncompressed public key and a 32-byte private key');
  }
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: toBase64Url(publicKey.slice(1, 33)),
    y: toBase64Url(publicKey.slice(33, 65)),
    d: toBase64Url(d),
  };
  return (await importJWK(jwk, 'ES256')) as CryptoKey;
}

/** Signs the VAPID JWT for one push service origin (RFC 8292 2). */
export async function signVapidJwt(key: CryptoKey, audience: string, subject: string, nowMs: number) {
  return new SignJWT({ sub: subject })
    .setProtectedHeader({ typ: 'JWT', alg: 'ES256' })
    .setAudience(audience)
    .setExpirationTime(Math.floor(nowMs / 1000) + VAPID_TOKEN_LIFETIME_SECONDS)
    .sign(key);
}

/** VAPID Authorization headers of one instance, one per push service origin, reused for hours. */
function createVapidSource(config: WebPushConfig, now: () => number) {
  let key: Promise<CryptoKey> | undefined;
  const byOrigin = new Map<string, { header: string; expiresAtMs: number }>();
  return async (origin: string): Promise<string> => {
    const cached = byOrigin.get(origin);
    if (cached && cached.expiresAtMs - now() > VAPID_MIN_REMAINING_MS) return cached.header;
    key ??= importVapidKey(config);
    let signingKey: CryptoKey;
    try {
      signingKey = await key;
    } catch (error) {
      key = undefined;
      throw error;
    }
    const nowMs = now();
    const jwt = await signVapidJwt(signingKey, origin, config.subject, nowMs);
    const header = `vapid t=${jwt}, k=${config.vapidPublicKey}`;
    if (byOrigin.size >= VAPID_CACHE_LIMIT) byOrigin.clear();
    byOrigin.set(origin, { header, expiresAtMs: nowMs + VAPID_TOKEN_LIFETIME_SECONDS * 1000 });
    return header;
  };
}

type Encrypted = { ok: true; body: Uint8Array; authorization: string } | { ok: false; result: SendResult };

/** Encrypts the payload for the subscription and signs for its push service, or says what failed. */
async function sealFor(
  subscription: WebPushSubscription,
  message: RenderedMessage,
  priority: Priority,
  vapidFor: (origin: string) => Promise<string>,
): Promise<Encrypted> {
  const plaintext = new TextEncoder().encode(webPushPayload(message, priority));
  const limit = WEBPUSH_LIMITS.fields.payload;
  if (plaintext.byteLength > limit) {
    const reason = `payload is ${plaintext.byteLength} bytes, Web Push allows ${limit}`;
    return { ok: false, result: permanent(reason, 'PayloadTooLarge') };
  }
  let body: Uint8Array;
  try {
    body = await encryptAes128gcm(plaintext, subscription.keys);
  } catch {
    const reason = 'subscription p256dh is not a P-256 point';
    return { ok: false, result: permanent(reason, 'InvalidSubscription', { invalidAddress: true }) };
  }
  try {
    return { ok: true, body, authorization: await vapidFor(subscription.endpoint.origin) };
  } catch {
    const reason = 'VAPID_PUBLIC_KEY/VAPID_PRIVATE_KEY are not a usable P-256 pair';
    return { ok: false, result: permanent(reason, undefined, { configError: true }) };
  }
}

/** The push message request of one delivery, or the result that makes sending it pointless. */
async function webPushCall(
  request: PushRequest,
  config: WebPushConfig,
  vapidFor: (origin: string) => Promise<string>,
) {
  const parsed = parseSubscription(request.address.deviceToken, config.allowLoopback);
  if (!parsed.ok) return permanent(parsed.reason, 'InvalidSubscription', { invalidAddress: true });
  const sealed = await sealFor(parsed.subscription, request.message, request.priority, vapidFor);
  if (!sealed.ok) return sealed.result;
  const options = pushOptions(request.message, request.priority);
  return buildWebPushRequest(parsed.subscription, {
    authorization: sealed.authorization,
    body: sealed.body,
    ttlSeconds: options.ttlSeconds,
    urgency: urgencyFor(request.priority),
    topic: await webPushTopicFor(options.collapseId ?? request.deliveryId),
  });
}

/** Web Push (RFC 8030) with aes128gcm encryption and VAPID; the VAPID JWT cache lives per instance. */
export const webpush = pushProvider({
  name: 'webpush',
  limits: WEBPUSH_LIMITS,
  idempotent: true,
  configFromEnv: webPushConfigFromEnv,
  steps(config, deps) {
    const vapidFor = createVapidSource(config, deps.now);
    return { build: (request) => webPushCall(request, config, vapidFor), classify: classifyWebPushAnswer };
  },
});
