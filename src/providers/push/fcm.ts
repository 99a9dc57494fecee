// FCM HTTP v1: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
// (errors: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode, OAuth: https://developers.google.com/identity/protocols/oauth2/service-account)
import { tryParseJson } from '../../lib/http';
import { type HttpAnswer, type HttpCall, stringField } from '../http-call';
import { classOfStatus, type ErrorClass, permanent, resultOfClass, sent, shortReason } from '../results';
import { MissingCredentialsError, type ProviderEnv, type SendResult } from '../types';
import { readBaseUrl, readVar, requireVars } from '../vars';
import { apnsCollapseIdFor } from './apns';
import {
  apnsExpiration,
  normalizePem,
  PUSH_TIMEOUT_MS,
  type PushOptions,
  type PushRequest,
  pushOptions,
  pushProvider,
} from './common';
import { createAccessTokenSource, type ServiceAccount } from './fcm-token';

export { FCM_ACCESS_TOKEN_MAX_AGE_MS, FCM_SCOPE } from './fcm-token';

export const FCM_DEFAULT_BASE_URL = 'https://fcm.googleapis.com';
export const GOOGLE_DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/**
 * FCM limits: a message payload (notification and data) of at most 4,096 bytes
 * (https://firebase.google.com/docs/cloud-messaging/concept-options), one token a send, and a
 * default quota of 600,000 messages a minute per project
 * (https://firebase.google.com/docs/cloud-messaging/throttling-and-quotas). The OAuth token
 * request shares the timeout.
 */
export const FCM_LIMITS = {
  timeoutMs: PUSH_TIMEOUT_MS,
  maxBodyBytes: 4096,
  recipientsPerRequest: 1,
  documentedRatePerSecond: 10_000,
};

/** QUOTA_EXCEEDED may come without Retry-After; FCM's docs ask for a first delay of at least a minute. */
const QUOTA_RETRY_SECONDS = 60;

/** Data keys FCM reserves (INVALID_ARGUMENT "invalid data key"); they are dropped, not sent. */
const RESERVED_DATA_KEYS = new Set(['from', 'notification', 'message_type']);
const RESERVED_DATA_PREFIXES = ['google', 'gcm'];

/** What the FCM provider needs: the service account and the endpoints. */
export interface FcmConfig extends ServiceAccount {
  projectId: string;
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
    baseUrl: readBaseUrl(env, 'FCM_BASE_URL') ?? FCM_DEFAULT_BASE_URL,
  };
}

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
  request: PushRequest,
  context: FcmRequestContext,
): HttpCall {
  const { accessToken, nowMs } = context;
  const { message } = request;
  const options = pushOptions(message, request.priority);
  const data = fcmData(options.data, message.url);
  const apnsHeaders: Record<string, string> = {
    'apns-priority': options.urgent ? '10' : '5',
    'apns-expiration': apnsExpiration(options, nowMs),
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

/** The parsed error of an FCM answer and its FcmError code. */
export function readFcmError(json: unknown): {
  error: GoogleError | undefined;
  errorCode: string | undefined;
} {
  const error = (json as { error?: unknown } | undefined)?.error;
  const google = typeof error === 'object' && error !== null ? (error as GoogleError) : undefined;
  const details = Array.isArray(google?.details) ? google.details : [];
  const fcmError = details.find((detail) => detail?.['@type']?.endsWith('google.firebase.fcm.v1.FcmError'));
  return { error: google, errorCode: fcmError?.errorCode };
}

/** INVALID_ARGUMENT is about the token when FCM names `message.token` or says the token is invalid. */
function isTokenProblem(error: GoogleError | undefined): boolean {
  const details = Array.isArray(error?.details) ? error.details : [];
  const namesToken = details.some((detail) =>
    (detail.fieldViolations ?? []).some((violation) => violation.field === 'message.token'),
  );
  return namesToken || /registration token/i.test(error?.message ?? '');
}

function fcmClass(status: number, code: string, error: GoogleError | undefined): ErrorClass {
  switch (code) {
    case 'UNREGISTERED':
    case 'SENDER_ID_MISMATCH':
      return 'invalidAddress';
    case 'INVALID_ARGUMENT':
      return isTokenProblem(error) ? 'invalidAddress' : 'permanent';
    case 'QUOTA_EXCEEDED':
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return 'retryable';
    case 'THIRD_PARTY_AUTH_ERROR':
      return 'configError';
  }
  // Canonical Google errors: only a real NOT_FOUND proves the token dead, a 404 from a wrong
  // FCM_BASE_URL does not.
  if (status === 404 && error?.status === 'NOT_FOUND') return 'invalidAddress';
  if (status === 400 && isTokenProblem(error)) return 'invalidAddress';
  return classOfStatus(status, { 404: 'configError' });
}

/** Maps one messages:send answer (pure). */
export function classifyFcmAnswer(answer: HttpAnswer): SendResult {
  const { status, json } = answer;
  if (answer.ok) return sent(stringField(json, 'name'));
  const { error, errorCode } = readFcmError(json);
  const code = errorCode && errorCode !== 'UNSPECIFIED_ERROR' ? errorCode : (error?.status ?? String(status));
  const apnsDetail = error?.details?.find((detail) => detail?.['@type']?.endsWith('ApnsError'));
  const apnsText = apnsDetail?.reason ? ` (APNs ${apnsDetail.status_code ?? ''} ${apnsDetail.reason})` : '';
  const reason = shortReason(
    `FCM ${status} ${code}: ${error?.message ?? answer.body.slice(0, 200)}${apnsText}`,
  );
  const retryAfter =
    code === 'QUOTA_EXCEEDED' ? (answer.retryAfterSeconds ?? QUOTA_RETRY_SECONDS) : answer.retryAfterSeconds;
  return resultOfClass(fcmClass(status, code, error), reason, code, retryAfter);
}

/** The messages:send request of one delivery with a settled access token. */
async function fcmCall(config: FcmConfig, request: PushRequest, accessToken: string, nowMs: number) {
  const { collapseId }: PushOptions = pushOptions(request.message, request.priority);
  return buildFcmRequest(config, request, {
    accessToken,
    nowMs,
    ...(collapseId ? { apnsCollapseId: await apnsCollapseIdFor(collapseId) } : {}),
  });
}

/** Firebase Cloud Messaging (HTTP v1) with a service account; the OAuth token cache lives per instance. */
export const fcm = pushProvider({
  name: 'fcm',
  limits: FCM_LIMITS,
  configFromEnv: fcmConfigFromEnv,
  steps(config, deps) {
    const tokens = createAccessTokenSource(config, deps, FCM_LIMITS);
    return {
      async build(request) {
        if (request.address.deviceToken.trim() === '') {
          return permanent('empty FCM registration token', undefined, { invalidAddress: true });
        }
        const token = await tokens.get();
        return token.ok ? fcmCall(config, request, token.token, deps.now()) : token.result;
      },
      // An access token can be revoked or expire early: fetch a fresh one once and resend once.
      again(answer) {
        if (answer.status !== 401 || readFcmError(answer.json).errorCode === 'THIRD_PARTY_AUTH_ERROR')
          return false;
        tokens.drop();
        return true;
      },
      classify(answer) {
        if (answer.status === 401) tokens.drop();
        return classifyFcmAnswer(answer);
      },
    };
  },
});
