// Web Push: https://www.rfc-editor.org/rfc/rfc8030 (protocol), rfc8291 (encryption), rfc8292 (VAPID)
import { importJWK, SignJWT } from 'jose';
import type { Priority } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import { isRetryableStatus, parseRetryAfter, safeText } from '../../lib/http';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import {
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import {
  base64UrlDecode,
  base64UrlEncode,
  networkFailure,
  PUSH_TIMEOUT_MS,
  pushOptions,
  sha256,
  shortReason,
} from './common';
import { encryptAes128gcm, hasValidKeySizes, MAX_PLAINTEXT_BYTES } from './webpush-encryption';

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
    allowLoopback: readVar(env, 'ENVIRONMENT') === 'development',
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
  const p256dh = typeof sub.keys?.p256dh === 'string' ? base64UrlDecode(sub.keys.p256dh) : undefined;
  const auth = typeof sub.keys?.auth === 'string' ? base64UrlDecode(sub.keys.auth) : undefined;
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
 * RFC 8030 5.4 Topic: at most 32 base64url characters. A collapse id that fits is used as is,
 * any other becomes the first 32 characters of its SHA-256 in base64url.
 */
export async function webPushTopicFor(collapseId: string): Promise<string> {
  if (/^[A-Za-z0-9_-]{1,32}$/.test(collapseId)) return collapseId;
  return base64UrlEncode(await sha256(collapseId)).slice(0, 32);
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
  // A redirect is never followed: it could point where the SSRF guard never looked.
  return new Request(subscription.endpoint.toString(), {
    method: 'POST',
    headers,
    body: parts.body,
    redirect: 'manual',
  });
}

/** Maps one push service answer (pure). */
export function mapWebPushResponse(
  status: number,
  headers: Headers,
  bodyText: string,
  nowMs: number,
): SendResult {
  if (status === 200 || status === 201 || status === 202) {
    const location = headers.get('location');
    return { kind: 'sent', ...(location ? { providerMessageId: location } : {}) };
  }
  const code = String(status);
  const reason = shortReason(`push service ${status} ${bodyText.slice(0, 200)}`);
  if (status === 404 || status === 410) return { kind: 'permanent', reason, code, invalidAddress: true };
  if (status === 413) return { kind: 'permanent', reason, code: 'PayloadTooLarge' };
  // 400/401/403 from a push service mean the VAPID signature or key was refused.
  if (status === 400 || status === 401 || status === 403)
    return { kind: 'permanent', reason, code, configError: true };
  if (isRetryableStatus(status)) {
    const retryAfterSeconds = parseRetryAfter(headers.get('retry-after'), nowMs);
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    };
  }
  return { kind: 'permanent', reason, code };
}

/** Imports the VAPID private key for ES256; throws when the keys are not a P-256 pair encoding. */
export async function importVapidKey(config: WebPushConfig): Promise<CryptoKey> {
  const publicKey = base64UrlDecode(config.vapidPublicKey);
  const d = base64UrlDecode(config.vapidPrivateKey);
  if (publicKey?.byteLength !== 65 || publicKey[0] !== 0x04 || d?.byteLength !== 32) {
    throw new Error('VAPID keys must be a 65-byte uncompressed public key and a 32-byte private key');
  }
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: base64UrlEncode(publicKey.slice(1, 33)),
    y: base64UrlEncode(publicKey.slice(33, 65)),
    d: base64UrlEncode(d),
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

/** Builds the Web Push provider; the VAPID key and JWT cache live in this instance. */
export function createWebPushProvider(config: WebPushConfig, deps: ProviderDeps) {
  const vapidFor = createVapidSource(config, deps.now);
  return {
    name: 'webpush',
    channel: 'push' as const,
    platforms: ['webpush'] as const,
    async send(request: SendRequest): Promise<SendResult> {
      const { address } = request;
      if (address.channel !== 'push' || address.platform !== 'webpush') {
        return { kind: 'permanent', reason: 'webpush provider got a non-webpush address' };
      }
      const parsed = parseSubscription(address.deviceToken, config.allowLoopback);
      if (!parsed.ok)
        return {
          kind: 'permanent',
          reason: parsed.reason,
          code: 'InvalidSubscription',
          invalidAddress: true,
        };
      const { subscription } = parsed;

      const plaintext = new TextEncoder().encode(webPushPayload(request.message, request.priority));
      if (plaintext.byteLength > MAX_PLAINTEXT_BYTES) {
        const reason = `payload is ${plaintext.byteLength} bytes, Web Push allows ${MAX_PLAINTEXT_BYTES}`;
        return { kind: 'permanent', reason, code: 'PayloadTooLarge' };
      }
      let body: Uint8Array;
      try {
        body = await encryptAes128gcm(plaintext, subscription.keys);
      } catch {
        return {
          kind: 'permanent',
          reason: 'subscription p256dh is not a P-256 point',
          code: 'InvalidSubscription',
          invalidAddress: true,
        };
      }
      let authorization: string;
      try {
        authorization = await vapidFor(subscription.endpoint.origin);
      } catch {
        return {
          kind: 'permanent',
          reason: 'VAPID_PUBLIC_KEY/VAPID_PRIVATE_KEY are not a usable P-256 pair',
          configError: true,
        };
      }
      const options = pushOptions(request.message, request.priority);
      const built = buildWebPushRequest(subscription, {
        authorization,
        body,
        ttlSeconds: options.ttlSeconds,
        urgency: urgencyFor(request.priority),
        ...(options.collapseId ? { topic: await webPushTopicFor(options.collapseId) } : {}),
      });
      let response: Response;
      try {
        response = await deps.fetch(built, {
          redirect: 'manual',
          signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
        });
      } catch (error) {
        return networkFailure(error);
      }
      return mapWebPushResponse(response.status, response.headers, await safeText(response, 512), deps.now());
    },
  };
}

/** Web Push (RFC 8030) with aes128gcm encryption and VAPID, to any browser push service. */
export const webpush: ProviderDefinition = {
  name: 'webpush',
  channel: 'push',
  platforms: ['webpush'],
  create(env, deps) {
    return createWebPushProvider(webPushConfigFromEnv(env), deps);
  },
};
