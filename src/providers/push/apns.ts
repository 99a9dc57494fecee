// APNs provider API, token auth: https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// (responses: .../handling-notification-responses-from-apns, JWT: .../establishing-a-token-based-connection-to-apns)
import { importPKCS8, SignJWT } from 'jose';
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus, parseRetryAfter, tryParseJson } from '../../lib/http';
import { callHttp, isHttpAnswer } from '../http-call';
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
  byteLength,
  normalizePem,
  PUSH_TIMEOUT_MS,
  pushOptions,
  sha256,
  shortReason,
  toHex,
  trimTrailingSlash,
} from './common';

/** The two APNs environments; a device token only works in the one its app build registered with. */
export const APNS_HOSTS = {
  production: 'https://api.push.apple.com',
  sandbox: 'https://api.sandbox.push.apple.com',
} as const;

/** Apple: refresh the provider token no more than once every 20 minutes and before it is 60 minutes old. */
export const APNS_TOKEN_MAX_AGE_MS = 40 * 60_000;

/** Apple's limit for `apns-collapse-id`. */
const MAX_COLLAPSE_ID_BYTES = 64;

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
    baseUrl: trimTrailingSlash(readVar(env, 'APNS_BASE_URL') ?? APNS_HOSTS[apnsEnvironment(env)]),
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
  /** Canonical lowercase UUID; APNs uses it to identify the notification. */
  apnsId: string;
  collapseId?: string;
}

/** The outgoing APNs request; `body` is the exact JSON text sent. */
export interface ApnsHttpRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/**
 * Builds the APNs request for one delivery (pure). The payload is the app data with `url` and
 * Apple's `aps` dictionary; `aps` is never taken from app data.
 */
export function buildApnsRequest(
  config: ApnsConfig,
  request: SendRequest<AddressOf<'push'>>,
  ids: ApnsRequestIds,
  providerToken: string,
  nowMs: number,
): ApnsHttpRequest {
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
    // 0 means "try once, do not store"; otherwise the epoch second the notification expires.
    'apns-expiration': options.ttlSeconds === 0 ? '0' : String(Math.floor(nowMs / 1000) + options.ttlSeconds),
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
 * RFC 9562) made from its SHA-256, so every retry of a delivery carries the same id.
 */
export async function apnsIdFor(deliveryId: string): Promise<string> {
  if (UUID_PATTERN.test(deliveryId)) return deliveryId.toLowerCase();
  const bytes = (await sha256(deliveryId)).slice(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = toHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A collapse id APNs accepts: as given when it fits 64 bytes, else its SHA-256 in hex (64 bytes). */
export async function apnsCollapseIdFor(collapseId: string): Promise<string> {
  return byteLength(collapseId) <= MAX_COLLAPSE_ID_BYTES ? collapseId : toHex(await sha256(collapseId));
}

type ReasonClass = 'invalidAddress' | 'config' | 'staleToken' | 'retry' | 'permanent';

/** Apple's documented `reason` strings and what each means for Herald. */
export const APNS_REASONS: Readonly<Record<string, ReasonClass>> = {
  // 400
  BadCollapseId: 'permanent',
  BadDeviceToken: 'invalidAddress',
  BadExpirationDate: 'permanent',
  BadMessageId: 'permanent',
  BadPriority: 'permanent',
  BadTopic: 'config',
  DeviceTokenNotForTopic: 'invalidAddress',
  DuplicateHeaders: 'permanent',
  IdleTimeout: 'retry',
  InvalidPushType: 'permanent',
  MissingDeviceToken: 'invalidAddress',
  MissingTopic: 'config',
  PayloadEmpty: 'permanent',
  TopicDisallowed: 'config',
  // 403
  BadCertificate: 'config',
  BadCertificateEnvironment: 'config',
  ExpiredProviderToken: 'staleToken',
  Forbidden: 'config',
  InvalidProviderToken: 'config',
  MissingProviderToken: 'config',
  UnrelatedKeyIdInToken: 'config',
  BadEnvironmentKeyInToken: 'config',
  BadEnvironmentKeyIdInToken: 'config',
  // 404, 405
  BadPath: 'config',
  MethodNotAllowed: 'config',
  // 410
  ExpiredToken: 'invalidAddress',
  Unregistered: 'invalidAddress',
  // 413
  PayloadTooLarge: 'permanent',
  // 429: a new provider token would make TooManyProviderTokenUpdates worse, so it is kept.
  TooManyProviderTokenUpdates: 'retry',
  TooManyRequests: 'retry',
  // 500, 503
  InternalServerError: 'retry',
  ServiceUnavailable: 'retry',
  Shutdown: 'retry',
};

/** The class of an answer whose reason is missing or not in Apple's table. */
function classOfStatus(status: number): ReasonClass {
  if (status === 410) return 'invalidAddress';
  if (status === 403) return 'config';
  return isRetryableStatus(status) ? 'retry' : 'permanent';
}

/** How an APNs answer maps to a SendResult, and whether the cached provider token must go. */
export interface ApnsOutcome {
  result: SendResult;
  dropProviderToken: boolean;
}

/** Maps one APNs answer (pure). */
export function mapApnsResponse(
  status: number,
  headers: Headers,
  bodyText: string,
  nowMs: number,
): ApnsOutcome {
  if (status === 200) {
    const apnsId = headers.get('apns-id');
    return {
      result: { kind: 'sent', ...(apnsId ? { providerMessageId: apnsId } : {}) },
      dropProviderToken: false,
    };
  }
  const body = tryParseJson(bodyText) as { reason?: unknown } | undefined;
  const reason = typeof body?.reason === 'string' ? body.reason : undefined;
  const known = reason !== undefined ? APNS_REASONS[reason] : undefined;
  const reasonClass = known ?? classOfStatus(status);
  const text = shortReason(`APNs ${status} ${reason ?? (bodyText.slice(0, 200) || 'no reason')}`);
  const code = reason ?? String(status);
  const dropProviderToken = reason === 'ExpiredProviderToken' || reason === 'InvalidProviderToken';
  return { result: resultOf(reasonClass, text, code, headers, nowMs), dropProviderToken };
}

function resultOf(
  reasonClass: ReasonClass,
  reason: string,
  code: string,
  headers: Headers,
  nowMs: number,
): SendResult {
  switch (reasonClass) {
    case 'invalidAddress':
      return { kind: 'permanent', reason, code, invalidAddress: true };
    case 'config':
      return { kind: 'permanent', reason, code, configError: true };
    case 'permanent':
      return { kind: 'permanent', reason, code };
    case 'staleToken':
      return { kind: 'retryable', reason, code };
    case 'retry': {
      const retryAfterSeconds = parseRetryAfter(headers.get('retry-after'), nowMs);
      return {
        kind: 'retryable',
        reason,
        code,
        ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
      };
    }
  }
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

/** Builds the APNs provider from its config; the provider-token cache lives in this instance. */
export function createApnsProvider(config: ApnsConfig, deps: ProviderDeps) {
  const tokens = createProviderTokenSource(config, deps.now);
  return {
    name: 'apns',
    channel: 'push' as const,
    platforms: ['apns'] as const,
    async send(request: SendRequest): Promise<SendResult> {
      const { address } = request;
      if (address.channel !== 'push' || address.platform !== 'apns') {
        return { kind: 'permanent', reason: 'apns provider got a non-apns address' };
      }
      if (!isApnsDeviceToken(address.deviceToken)) {
        return {
          kind: 'permanent',
          reason: 'device token is not a hex APNs token',
          code: 'BadDeviceToken',
          invalidAddress: true,
        };
      }
      let providerToken: string;
      try {
        providerToken = await tokens.get();
      } catch {
        return {
          kind: 'permanent',
          reason: 'APNS_PRIVATE_KEY is not a usable ES256 PKCS#8 key',
          configError: true,
        };
      }
      const options = pushOptions(request.message, request.priority);
      const ids: ApnsRequestIds = {
        apnsId: await apnsIdFor(request.deliveryId),
        ...(options.collapseId ? { collapseId: await apnsCollapseIdFor(options.collapseId) } : {}),
      };
      const built = buildApnsRequest(config, { ...request, address }, ids, providerToken, deps.now());
      const answer = await callHttp(deps, built, { timeoutMs: PUSH_TIMEOUT_MS });
      if (!isHttpAnswer(answer)) return answer;
      const outcome = mapApnsResponse(answer.status, answer.headers, answer.body, deps.now());
      if (outcome.dropProviderToken) tokens.drop();
      return outcome.result;
    },
  };
}

/** APNs over HTTP/2 with a .p8 signing key (token-based auth). */
export const apns: ProviderDefinition = {
  name: 'apns',
  channel: 'push',
  platforms: ['apns'],
  create(env, deps) {
    return createApnsProvider(apnsConfigFromEnv(env), deps);
  },
};
