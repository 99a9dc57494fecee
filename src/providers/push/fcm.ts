// FCM HTTP v1: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
// (errors: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode, OAuth: https://developers.google.com/identity/protocols/oauth2/service-account)
import { importPKCS8, SignJWT } from 'jose';
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus, tryParseJson } from '../../lib/http';
import { callHttp, type HttpCall, isHttpAnswer } from '../http-call';
import {
  MissingCredentialsError,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import { apnsCollapseIdFor } from './apns';
import { normalizePem, PUSH_TIMEOUT_MS, pushOptions, shortReason, trimTrailingSlash } from './common';

export const FCM_DEFAULT_BASE_URL = 'https://fcm.googleapis.com';
export const GOOGLE_DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** Google issues one-hour access tokens; reuse one for at most 55 minutes. */
export const FCM_ACCESS_TOKEN_MAX_AGE_MS = 55 * 60_000;

/** QUOTA_EXCEEDED may come without Retry-After; FCM's docs ask for a first delay of at least a minute. */
const QUOTA_RETRY_SECONDS = 60;

/** Data keys FCM reserves (INVALID_ARGUMENT "invalid data key"); they are dropped, not sent. */
const RESERVED_DATA_KEYS = new Set(['from', 'notification', 'message_type']);
const RESERVED_DATA_PREFIXES = ['google', 'gcm'];

/** What the FCM provider needs: the service account and the endpoints. */
export interface FcmConfig {
  projectId: string;
  clientEmail: string;
  /** PKCS#8 PEM of the service account's RSA key. */
  privateKeyPem: string;
  /** The key's id, sent as the JWT `kid` so Google picks the right public key. */
  privateKeyId?: string;
  tokenUrl: string;
  baseUrl: string;
}

/** Reads FCM_SERVICE_ACCOUNT (the service-account JSON), GOOGLE_OAUTH_TOKEN_URL and FCM_BASE_URL. */
export function fcmConfigFromEnv(env: ProviderEnv): FcmConfig {
  const { FCM_SERVICE_ACCOUNT } = requireVars(env, 'fcm', ['FCM_SERVICE_ACCOUNT']);
  const account = tryParseJson(FCM_SERVICE_ACCOUNT);
  if (typeof account !== 'object' || account === null) {
    // The secret is present but unusable: name it, never echo it.
    throw new MissingCredentialsError('fcm', ['FCM_SERVICE_ACCOUNT (not valid JSON)']);
  }
  const fields = account as Record<string, unknown>;
  const text = (name: string) =>
    typeof fields[name] === 'string' && fields[name] !== '' ? fields[name] : undefined;
  const missing = ['project_id', 'client_email', 'private_key'].filter((name) => text(name) === undefined);
  if (missing.length > 0) {
    throw new MissingCredentialsError(
      'fcm',
      missing.map((name) => `FCM_SERVICE_ACCOUNT.${name}`),
    );
  }
  const privateKeyId = text('private_key_id');
  return {
    projectId: text('project_id') as string,
    clientEmail: text('client_email') as string,
    privateKeyPem: normalizePem(text('private_key') as string),
    ...(privateKeyId ? { privateKeyId } : {}),
    tokenUrl: readVar(env, 'GOOGLE_OAUTH_TOKEN_URL') ?? text('token_uri') ?? GOOGLE_DEFAULT_TOKEN_URL,
    baseUrl: trimTrailingSlash(readVar(env, 'FCM_BASE_URL') ?? FCM_DEFAULT_BASE_URL),
  };
}

/** An outgoing request whose `body` is the exact text sent. */
export type FcmHttpRequest = HttpCall;

/** Converts app data to FCM's map<string, string>: strings as they are, anything else as JSON. */
export function fcmData(data: Record<string, unknown>, url?: string): Record<string, string> {
  const entries = Object.entries({ ...data, ...(url ? { url } : {}) })
    .filter(([key, value]) => value !== undefined && value !== null && !isReservedDataKey(key))
    .map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]);
  return Object.fromEntries(entries);
}

function isReservedDataKey(key: string): boolean {
  const lower = key.toLowerCase();
  return RESERVED_DATA_KEYS.has(lower) || RESERVED_DATA_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/** Per-send inputs of the request builder that are not in the delivery. */
export interface FcmRequestContext {
  accessToken: string;
  nowMs: number;
  /** The collapse id shortened to APNs's 64-byte limit (see apnsCollapseIdFor). */
  apnsCollapseId?: string;
}

/**
 * Builds the messages:send request (pure). One message reaches Android, iOS and web tokens, so
 * each platform block carries its own priority, lifetime and collapse key.
 */
export function buildFcmRequest(
  config: FcmConfig,
  request: SendRequest<AddressOf<'push'>>,
  context: FcmRequestContext,
): FcmHttpRequest {
  const { accessToken, nowMs } = context;
  const { message } = request;
  const options = pushOptions(message, request.priority);
  const data = fcmData(options.data, message.url);
  const apnsHeaders: Record<string, string> = {
    'apns-priority': options.urgent ? '10' : '5',
    'apns-expiration': options.ttlSeconds === 0 ? '0' : String(Math.floor(nowMs / 1000) + options.ttlSeconds),
  };
  const webpushHeaders: Record<string, string> = {
    TTL: String(options.ttlSeconds),
    Urgency: options.urgent ? 'high' : 'normal',
  };
  if (context.apnsCollapseId) apnsHeaders['apns-collapse-id'] = context.apnsCollapseId;
  const body = {
    message: {
      token: request.address.deviceToken,
      notification: { title: message.title, body: message.body },
      ...(Object.keys(data).length > 0 ? { data } : {}),
      android: {
        priority: options.urgent ? 'HIGH' : 'NORMAL',
        ttl: `${options.ttlSeconds}s`,
        ...(options.collapseId ? { collapse_key: options.collapseId } : {}),
      },
      apns: { headers: apnsHeaders },
      webpush: {
        headers: webpushHeaders,
        // FCM only accepts an HTTPS link here.
        ...(message.url?.startsWith('https://') ? { fcm_options: { link: message.url } } : {}),
      },
    },
  };
  return {
    url: `${config.baseUrl}/v1/projects/${encodeURIComponent(config.projectId)}/messages:send`,
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json; charset=UTF-8' },
    body: JSON.stringify(body),
  };
}

/** Signs the service account's JWT assertion (RS256) for the OAuth token endpoint. */
export async function signFcmAssertion(config: FcmConfig, key: CryptoKey, nowMs: number): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  return new SignJWT({ scope: FCM_SCOPE })
    .setProtectedHeader({
      alg: 'RS256',
      typ: 'JWT',
      ...(config.privateKeyId ? { kid: config.privateKeyId } : {}),
    })
    .setIssuer(config.clientEmail)
    .setAudience(config.tokenUrl)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(key);
}

/** Builds the token request exchanging a JWT assertion for an access token (pure). */
export function buildTokenRequest(config: FcmConfig, assertion: string): FcmHttpRequest {
  const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  return {
    url: config.tokenUrl,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  };
}

/** Maps a failed token-endpoint answer: bad credentials are config errors, outages retryable. */
export function mapTokenFailure(
  status: number,
  bodyText: string,
  retryAfter: number | undefined,
): SendResult {
  const body = tryParseJson(bodyText) as { error?: unknown; error_description?: unknown } | undefined;
  const code = typeof body?.error === 'string' ? body.error : String(status);
  const description = typeof body?.error_description === 'string' ? ` ${body.error_description}` : '';
  const reason = shortReason(`Google OAuth ${status} ${code}${description}`);
  if (isRetryableStatus(status)) {
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  return { kind: 'permanent', reason, code, configError: true };
}

interface GoogleErrorDetail {
  '@type'?: string;
  errorCode?: string;
  fieldViolations?: { field?: string; description?: string }[];
  reason?: string;
  status_code?: number;
}

interface GoogleError {
  status?: string;
  message?: string;
  details?: GoogleErrorDetail[];
}

/** The parsed error of an FCM answer: its FcmError code and whether it is about the token. */
export function readFcmError(bodyText: string): {
  error: GoogleError | undefined;
  errorCode: string | undefined;
} {
  const body = tryParseJson(bodyText) as { error?: GoogleError } | undefined;
  const error = typeof body?.error === 'object' && body.error !== null ? body.error : undefined;
  const details = Array.isArray(error?.details) ? error.details : [];
  const fcmError = details.find((detail) => detail?.['@type']?.endsWith('google.firebase.fcm.v1.FcmError'));
  return { error, errorCode: fcmError?.errorCode };
}

/** INVALID_ARGUMENT is about the token when FCM names `message.token` or says the token is invalid. */
function isTokenProblem(error: GoogleError | undefined): boolean {
  const details = Array.isArray(error?.details) ? error.details : [];
  const namesToken = details.some((detail) =>
    (detail.fieldViolations ?? []).some((violation) => violation.field === 'message.token'),
  );
  return namesToken || /registration token/i.test(error?.message ?? '');
}

/** Maps one messages:send answer other than 200 (pure). */
export function mapFcmError(status: number, bodyText: string, retryAfter: number | undefined): SendResult {
  const { error, errorCode } = readFcmError(bodyText);
  const code = errorCode && errorCode !== 'UNSPECIFIED_ERROR' ? errorCode : (error?.status ?? String(status));
  const apnsDetail = error?.details?.find((detail) => detail?.['@type']?.endsWith('ApnsError'));
  const apnsText = apnsDetail?.reason ? ` (APNs ${apnsDetail.status_code ?? ''} ${apnsDetail.reason})` : '';
  const reason = shortReason(`FCM ${status} ${code}: ${error?.message ?? bodyText.slice(0, 200)}${apnsText}`);
  const retryable = (seconds = retryAfter): SendResult => ({
    kind: 'retryable',
    reason,
    code,
    ...(seconds !== undefined ? { retryAfterSeconds: seconds } : {}),
  });
  switch (code) {
    case 'UNREGISTERED':
    case 'SENDER_ID_MISMATCH':
      return { kind: 'permanent', reason, code, invalidAddress: true };
    case 'INVALID_ARGUMENT':
      return isTokenProblem(error)
        ? { kind: 'permanent', reason, code, invalidAddress: true }
        : { kind: 'permanent', reason, code };
    case 'QUOTA_EXCEEDED':
      return retryable(retryAfter ?? QUOTA_RETRY_SECONDS);
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return retryable();
    case 'THIRD_PARTY_AUTH_ERROR':
      return { kind: 'permanent', reason, code, configError: true };
  }
  return mapFcmStatus(status, error, reason, code, retryable);
}

/** Answers without an FcmError code (canonical Google errors: NOT_FOUND, PERMISSION_DENIED ...). */
function mapFcmStatus(
  status: number,
  error: GoogleError | undefined,
  reason: string,
  code: string,
  retryable: () => SendResult,
): SendResult {
  // Only a real Google NOT_FOUND proves the token dead; a 404 from a wrong FCM_BASE_URL does not.
  if (status === 404 && error?.status === 'NOT_FOUND') {
    return { kind: 'permanent', reason, code, invalidAddress: true };
  }
  if (status === 401 || status === 403 || status === 404) {
    return { kind: 'permanent', reason, code, configError: true };
  }
  if (status === 400 && isTokenProblem(error))
    return { kind: 'permanent', reason, code, invalidAddress: true };
  return isRetryableStatus(status) ? retryable() : { kind: 'permanent', reason, code };
}

type TokenAnswer = { ok: true; token: string } | { ok: false; result: SendResult };

/**
 * The access token of one instance: fetched with a signed assertion, reused for 55 minutes.
 * Only settled tokens are cached (never an in-flight fetch), because a Worker must not await I/O
 * that another request started.
 */
function createAccessTokenSource(config: FcmConfig, deps: ProviderDeps) {
  let key: Promise<CryptoKey> | undefined;
  let current: { token: string; expiresAtMs: number } | undefined;

  const fetchToken = async (): Promise<TokenAnswer> => {
    let assertion: string;
    try {
      key ??= importPKCS8(config.privateKeyPem, 'RS256');
      assertion = await signFcmAssertion(config, await key, deps.now());
    } catch {
      key = undefined;
      const reason = 'FCM_SERVICE_ACCOUNT.private_key is not a usable RS256 PKCS#8 key';
      return { ok: false, result: { kind: 'permanent', reason, configError: true } };
    }
    const built = buildTokenRequest(config, assertion);
    const answer = await callHttp(deps, built, { timeoutMs: PUSH_TIMEOUT_MS });
    if (!isHttpAnswer(answer)) return { ok: false, result: answer };
    if (answer.status < 200 || answer.status >= 300) {
      return { ok: false, result: mapTokenFailure(answer.status, answer.body, answer.retryAfterSeconds) };
    }
    const body = tryParseJson(answer.body) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || body.access_token === '') {
      return {
        ok: false,
        result: { kind: 'retryable', reason: 'Google OAuth answered without access_token' },
      };
    }
    const lifetimeMs =
      typeof body.expires_in === 'number' ? (body.expires_in - 300) * 1000 : Number.POSITIVE_INFINITY;
    current = {
      token: body.access_token,
      expiresAtMs: deps.now() + Math.max(0, Math.min(FCM_ACCESS_TOKEN_MAX_AGE_MS, lifetimeMs)),
    };
    return { ok: true, token: body.access_token };
  };

  return {
    async get(): Promise<TokenAnswer> {
      if (current && deps.now() < current.expiresAtMs) return { ok: true, token: current.token };
      return fetchToken();
    },
    drop(): void {
      current = undefined;
    },
  };
}

/** Builds the FCM provider from its config; the OAuth token cache lives in this instance. */
export function createFcmProvider(config: FcmConfig, deps: ProviderDeps) {
  const tokens = createAccessTokenSource(config, deps);

  const post = async (request: SendRequest<AddressOf<'push'>>, accessToken: string) => {
    const { collapseId } = pushOptions(request.message, request.priority);
    const built = buildFcmRequest(config, request, {
      accessToken,
      nowMs: deps.now(),
      ...(collapseId ? { apnsCollapseId: await apnsCollapseIdFor(collapseId) } : {}),
    });
    return callHttp(deps, built, { timeoutMs: PUSH_TIMEOUT_MS });
  };

  return {
    name: 'fcm',
    channel: 'push' as const,
    platforms: ['fcm'] as const,
    async send(request: SendRequest): Promise<SendResult> {
      const { address } = request;
      if (address.channel !== 'push' || address.platform !== 'fcm') {
        return { kind: 'permanent', reason: 'fcm provider got a non-fcm address' };
      }
      if (address.deviceToken.trim() === '') {
        return { kind: 'permanent', reason: 'empty FCM registration token', invalidAddress: true };
      }
      const pushRequest = { ...request, address };
      let answer = await tokens.get();
      if (!answer.ok) return answer.result;
      let reply = await post(pushRequest, answer.token);
      if (!isHttpAnswer(reply)) return reply;
      // An access token can be revoked or expire early: fetch a fresh one once and resend once.
      if (reply.status === 401 && readFcmError(reply.body).errorCode !== 'THIRD_PARTY_AUTH_ERROR') {
        tokens.drop();
        answer = await tokens.get();
        if (!answer.ok) return answer.result;
        reply = await post(pushRequest, answer.token);
        if (!isHttpAnswer(reply)) return reply;
      }
      if (reply.status >= 200 && reply.status < 300) {
        const name = (tryParseJson(reply.body) as { name?: unknown } | undefined)?.name;
        return { kind: 'sent', ...(typeof name === 'string' ? { providerMessageId: name } : {}) };
      }
      if (reply.status === 401) tokens.drop();
      return mapFcmError(reply.status, reply.body, reply.retryAfterSeconds);
    },
  };
}

/** Firebase Cloud Messaging (HTTP v1) with a service account. */
export const fcm: ProviderDefinition = {
  name: 'fcm',
  channel: 'push',
  platforms: ['fcm'],
  create(env, deps) {
    return createFcmProvider(fcmConfigFromEnv(env), deps);
  },
};
