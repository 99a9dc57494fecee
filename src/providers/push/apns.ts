// APNs provider API, token auth: https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// (responses: .../handling-notification-responses-from-apns, JWT: .../establishing-a-token-based-connection-to-apns)
import { importPKCS8, SignJWT } from 'jose';
import { sha256Bytes } from '../../lib/crypto';
import { toHex } from '../../lib/encoding';
import type { HttpAnswer, HttpCall } from '../http-call';
import type { HttpSteps } from '../http-provider';
import { classOfStatus, type ErrorClass, permanent, resultOfClass, sent, shortReason } from '../results';
import type { ProviderDeps, ProviderEnv, SendResult } from '../types';
import { readBaseUrl, readVar, requireVars } from '../vars';
import {
  apnsExpiration,
  byteLength,
  normalizePem,
  PUSH_TIMEOUT_MS,
  type PushAddress,
  type PushRequest,
  pushOptions,
  pushProvider,
} from './common';

/**
 * APNs limits (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns):
 * a payload of at most 4,096 bytes, one device token a request, `apns-collapse-id` at most 64
 * bytes. Apple publishes no rate.
 */
export const APNS_LIMITS = {
  timeoutMs: PUSH_TIMEOUT_MS,
  maxBodyBytes: 4096,
  recipientsPerRequest: 1,
  fields: { collapseId: 64 },
};

/** The two APNs environments; a device token only works in the one its app build registered with. */
export const APNS_HOSTS = {
  production: 'https://api.push.apple.com',
  sandbox: 'https://api.sandbox.push.apple.com',
} as const;

/** Apple: refresh the provider token no more than once every 20 minutes and before it is 60 minutes old. */
export const APNS_TOKEN_MAX_AGE_MS = 40 * 60_000;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the APNs provider needs from the Worker's vars and secrets. */
export interface ApnsConfig {
  keyId: string;
  teamId: string;
  /** The .p8 signing key (PKCS#8 PEM). */
  privateKeyPem: string;
  /** The app's bundle id (or bundle id with a push-type suffix). */
  topic: string;
  baseUrl: string;
}

/** Reads APNS_KEY_ID, APNS_TEAM_ID, APNS_PRIVATE_KEY, APNS_TOPIC, APNS_ENVIRONMENT and APNS_BASE_URL. */
export function apnsConfigFromEnv(env: ProviderEnv): ApnsConfig {
  const vars = requireVars(env, 'apns', ['APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_PRIVATE_KEY', 'APNS_TOPIC']);
  return {
    keyId: vars.APNS_KEY_ID.trim(),
    teamId: vars.APNS_TEAM_ID.trim(),
    privateKeyPem: normalizePem(vars.APNS_PRIVATE_KEY),
    topic: vars.APNS_TOPIC.trim(),
    baseUrl: readBaseUrl(env, 'APNS_BASE_URL') ?? APNS_HOSTS[apnsEnvironment(env)],
  };
}

function apnsEnvironment(env: ProviderEnv): keyof typeof APNS_HOSTS {
  const value = (readVar(env, 'APNS_ENVIRONMENT') ?? 'production').trim().toLowerCase();
  if (value === 'production') return 'production';
  // `development` is what the app's aps-environment entitlement calls the sandbox.
  if (value === 'sandbox' || value === 'development') return 'sandbox';
  // Guessing would send sandbox tokens to production, and BadDeviceToken would delete them.
  throw new Error(`APNS_ENVIRONMENT must be "production" or "sandbox", got "${value.slice(0, 20)}"`);
}

/** Per-delivery values the request needs that are derived asynchronously (hashes). */
export interface ApnsRequestIds {
  /** Canonical lowercase UUID; APNs uses it to identify the notification (it does not deduplicate). */
  apnsId: string;
  /** `apns-collapse-id`: the template's collapse id, else the delivery's own (the idempotency key). */
  collapseId?: string;
}

/**
 * Builds the APNs request for one delivery (pure). The payload is the app data with `url` and
 * Apple's `aps` dictionary; `aps` is never taken from app data.
 */
export function buildApnsRequest(
  config: ApnsConfig,
  request: PushRequest,
  ids: ApnsRequestIds,
  providerToken: string,
  nowMs: number,
): HttpCall {
  const { message } = request;
  const options = pushOptions(message, request.priority);
  const { aps: _ignored, ...data } = options.data;
  const payload = {
    ...data,
    ...(message.url ? { url: message.url } : {}),
    aps: { alert: { title: message.title, body: message.body }, sound: 'default' },
  };
  const headers: Record<string, string> = {
    authorization: `bearer ${providerToken}`,
    'apns-topic': config.topic,
    'apns-push-type': 'alert',
    'apns-priority': options.urgent ? '10' : '5',
    'apns-expiration': apnsExpiration(options, nowMs),
    'apns-id': ids.apnsId,
    'content-type': 'application/json',
  };
  if (ids.collapseId) headers['apns-collapse-id'] = ids.collapseId;
  return {
    url: `${config.baseUrl}/3/device/${encodeURIComponent(request.address.deviceToken)}`,
    method: 'POST',
    headers,
    body: JSON.stringify(payload),
  };
}

/**
 * The `apns-id` for a delivery: the delivery id itself when it is a UUID, otherwise a UUID (v8,
 * RFC 9562) made from its SHA-256, so every retry of a delivery carries the same id. APNs only
 * echoes it; it does not drop a second request with the same id.
 */
export async function apnsIdFor(deliveryId: string): Promise<string> {
  if (UUID_PATTERN.test(deliveryId)) return deliveryId.toLowerCase();
  const bytes = (await sha256Bytes(deliveryId)).slice(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = toHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A collapse id APNs accepts: as given when it fits, else its SHA-256 in hex (64 bytes). Without
 * a template's own, the delivery id is the collapse id: the device shows a repeat of the same
 * delivery as the one notification it already shows, which is what makes APNs idempotent here.
 */
export async function apnsCollapseIdFor(collapseId: string): Promise<string> {
  if (byteLength(collapseId) <= APNS_LIMITS.fields.collapseId) return collapseId;
  return toHex(await sha256Bytes(collapseId));
}

/** Apple's documented `reason` strings and what each means for Herald. */
export const APNS_REASONS: Readonly<Record<string, ErrorClass>> = {
  // 400
  BadCollapseId: 'permanent',
  BadDeviceToken: 'invalidAddress',
  BadExpirationDate: 'permanent',
  BadMessageId: 'permanent',
  BadPriority: 'permanent',
  BadTopic: 'configError',
  DeviceTokenNotForTopic: 'invalidAddress',
  DuplicateHeaders: 'permanent',
  IdleTimeout: 'retryable',
  InvalidPushType: 'permanent',
  MissingDeviceToken: 'invalidAddress',
  MissingTopic: 'configError',
  PayloadEmpty: 'permanent',
  TopicDisallowed: 'configError',
  // 403 (ExpiredProviderToken also drops the cached token, see classifyApnsAnswer)
  BadCertificate: 'configError',
  BadCertificateEnvironment: 'configError',
  ExpiredProviderToken: 'retryable',
  Forbidden: 'configError',
  InvalidProviderToken: 'configError',
  MissingProviderToken: 'configError',
  UnrelatedKeyIdInToken: 'configError',
  BadEnvironmentKeyInToken: 'configError',
  BadEnvironmentKeyIdInToken: 'configError',
  // 404, 405
  BadPath: 'configError',
  MethodNotAllowed: 'configError',
  // 410
  ExpiredToken: 'invalidAddress',
  Unregistered: 'invalidAddress',
  // 413
  PayloadTooLarge: 'permanent',
  // 429: a new provider token would make TooManyProviderTokenUpdates worse, so it is kept.
  TooManyProviderTokenUpdates: 'retryable',
  TooManyRequests: 'retryable',
  // 500, 503
  InternalServerError: 'retryable',
  ServiceUnavailable: 'retryable',
  Shutdown: 'retryable',
};

/** How an APNs answer maps to a SendResult, and whether the cached provider token must go. */
export interface ApnsOutcome {
  result: SendResult;
  dropProviderToken: boolean;
}

/**
 * Maps one APNs answer (pure). A reason missing from Apple's table falls back to the status:
 * 410 is a dead token, 403 a configuration error, and APNs documents no 401.
 */
export function classifyApnsAnswer(answer: HttpAnswer): ApnsOutcome {
  const { status } = answer;
  if (status === 200)
    return { result: sent(answer.headers.get('apns-id') ?? undefined), dropProviderToken: false };
  const body = answer.json as { reason?: unknown } | undefined;
  const reason = typeof body?.reason === 'string' ? body.reason : undefined;
  const errorClass =
    (reason !== undefined ? APNS_REASONS[reason] : undefined) ??
    classOfStatus(status, { 401: 'permanent', 410: 'invalidAddress' });
  const text = shortReason(`APNs ${status} ${reason ?? (answer.body.slice(0, 200) || 'no reason')}`);
  return {
    result: resultOfClass(errorClass, text, reason ?? String(status), answer.retryAfterSeconds),
    dropProviderToken: reason === 'ExpiredProviderToken' || reason === 'InvalidProviderToken',
  };
}

/**
 * The provider token of one instance: signed once, reused until APNS_TOKEN_MAX_AGE_MS, dropped
 * when APNs calls it stale. Concurrent sends share one signing so APNs sees one token update.
 */
function createProviderTokenSource(config: ApnsConfig, now: () => number) {
  let key: Promise<CryptoKey> | undefined;
  let current: { jwt: string; issuedAtMs: number } | undefined;
  let signing: Promise<string> | undefined;

  const sign = async (): Promise<string> => {
    key ??= importPKCS8(config.privateKeyPem, 'ES256');
    const issuedAtMs = now();
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: config.keyId })
      .setIssuer(config.teamId)
      .setIssuedAt(Math.floor(issuedAtMs / 1000))
      .sign(await key);
    current = { jwt, issuedAtMs };
    return jwt;
  };

  return {
    async get(): Promise<string> {
      if (current && now() - current.issuedAtMs < APNS_TOKEN_MAX_AGE_MS) return current.jwt;
      signing ??= sign().finally(() => {
        signing = undefined;
      });
      try {
        return await signing;
      } catch (error) {
        key = undefined;
        throw error;
      }
    },
    drop(): void {
      current = undefined;
    },
  };
}

/** Token validation before a request: APNs device tokens are hex strings of varying length. */
function isApnsDeviceToken(token: string): boolean {
  return /^[0-9a-fA-F]+$/.test(token);
}

/**
 * The steps of one APNs instance: a hex token check, the cached provider token, the request, and
 * dropping that token when APNs calls it stale or invalid.
 */
function apnsSteps(config: ApnsConfig, deps: ProviderDeps): HttpSteps<PushAddress> {
  const tokens = createProviderTokenSource(config, deps.now);
  return {
    async build(request) {
      if (!isApnsDeviceToken(request.address.deviceToken)) {
        return permanent('device token is not a hex APNs token', 'BadDeviceToken', { invalidAddress: true });
      }
      let providerToken: string;
      try {
        providerToken = await tokens.get();
      } catch {
        return permanent('APNS_PRIVATE_KEY is not a usable ES256 PKCS#8 key', undefined, {
          configError: true,
        });
      }
      const options = pushOptions(request.message, request.priority);
      const ids: ApnsRequestIds = {
        apnsId: await apnsIdFor(request.deliveryId),
        collapseId: await apnsCollapseIdFor(options.collapseId ?? request.deliveryId),
      };
      return buildApnsRequest(config, request, ids, providerToken, deps.now());
    },
    classify(answer) {
      const outcome = classifyApnsAnswer(answer);
      if (outcome.dropProviderToken) tokens.drop();
      return outcome.result;
    },
  };
}

/** APNs over HTTP/2 with a .p8 signing key (token-based auth); the token cache lives per instance. */
export const apns = pushProvider({
  name: 'apns',
  limits: APNS_LIMITS,
  idempotent: true,
  configFromEnv: apnsConfigFromEnv,
  steps: apnsSteps,
});
