// Standard Webhooks signing: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
import type { AddressOf } from '../../domain/address';
import { fromBase64, toBase64 } from '../../lib/encoding';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import type { HttpAnswer, HttpCall } from '../http-call';
import { httpProvider } from '../http-provider';
import { classOfStatus, permanent, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendRequest, SendResult } from '../types';
import { allowsLoopback, requireVars } from '../vars';

type WebhookAddress = AddressOf<'webhook'>;

export interface WebhookConfig {
  /** Raw HMAC key decoded from WEBHOOK_SIGNING_SECRET (`whsec_<base64>`), used when an endpoint has none. */
  defaultKey: Uint8Array;
  /** Loopback targets (plain http to localhost) only when ENVIRONMENT is exactly 'development'. */
  allowLoopback: boolean;
  userAgent: string;
}

export const WEBHOOK_TIMEOUT_MS = 15_000;

/**
 * The endpoint is the customer's, so no size or rate is documented; one endpoint a request, and
 * 1 KB of an answer is enough to say why it failed.
 */
export const WEBHOOK_LIMITS = { timeoutMs: WEBHOOK_TIMEOUT_MS, recipientsPerRequest: 1, answerChars: 1024 };
export const WEBHOOK_USER_AGENT = 'Herald-Webhooks/1.0 (+https://www.standardwebhooks.com)';

const SECRET_PREFIX = 'whsec_';

/** Reads WEBHOOK_SIGNING_SECRET (required, `whsec_<base64>`) and ENVIRONMENT. */
export function webhookConfigFromEnv(env: ProviderEnv): WebhookConfig {
  const { WEBHOOK_SIGNING_SECRET } = requireVars(env, 'webhook', ['WEBHOOK_SIGNING_SECRET']);
  const defaultKey = decodeSigningSecret(WEBHOOK_SIGNING_SECRET);
  if (!defaultKey) throw new Error('WEBHOOK_SIGNING_SECRET must be whsec_ followed by base64');
  return {
    defaultKey,
    allowLoopback: allowsLoopback(env),
    userAgent: WEBHOOK_USER_AGENT,
  };
}

/**
 * Decodes a Standard Webhooks secret: an optional `whsec_` prefix, then base64 of the raw key.
 * Returns undefined when the secret is not valid base64 or is empty.
 */
export function decodeSigningSecret(secret: string): Uint8Array | undefined {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  // Receivers decode the standard alphabet: a url-safe secret would give them another key.
  if (!/^[A-Za-z0-9+/\s]*=*$/.test(encoded)) return undefined;
  const key = fromBase64(encoded);
  return key && key.byteLength > 0 ? key : undefined;
}

/** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` as the spec defines it. */
export async function signWebhook(
  key: Uint8Array,
  id: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const mac = await crypto.subtle.sign(
    'HMAC',
    cryptoKey,
    new TextEncoder().encode(`${id}.${timestamp}.${body}`),
  );
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/**
 * Builds the signed POST. `webhook-id` is the delivery id, the same on every attempt, so a
 * receiver can drop a redelivery (the Standard Webhooks idempotency key); `nowMs` becomes
 * `webhook-timestamp` in whole seconds.
 */
export async function buildWebhookRequest(
  key: Uint8Array,
  request: SendRequest<WebhookAddress>,
  nowMs: number,
  userAgent = WEBHOOK_USER_AGENT,
): Promise<HttpCall> {
  const body = JSON.stringify(request.message.json);
  const timestamp = Math.floor(nowMs / 1000);
  return {
    url: request.address.url,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': userAgent,
      'webhook-id': request.deliveryId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': await signWebhook(key, request.deliveryId, timestamp, body),
    },
    body,
  };
}

/**
 * Maps the endpoint's status to a SendResult. Redirects are never followed, so a 3xx is
 * permanent; a 401/403 is the customer's endpoint refusing, not Herald's configuration.
 */
export function classifyWebhookAnswer(answer: HttpAnswer): SendResult {
  const { status } = answer;
  if (answer.ok) return sent();
  const code = String(status);
  if (status >= 300 && status < 400) {
    return permanent(`endpoint answered ${status} redirect (redirects are not followed)`, code);
  }
  const snippet = answer.body.replace(/\s+/g, ' ').trim().slice(0, 200);
  const reason = shortReason(`endpoint answered ${status}${snippet ? `: ${snippet}` : ''}`);
  const errorClass = classOfStatus(status, { 401: 'permanent', 403: 'permanent', 410: 'invalidAddress' });
  return resultOfClass(errorClass, reason, code, answer.retryAfterSeconds);
}

/** Signed HTTP webhooks (Standard Webhooks) on the webhook channel. */
export const webhook = httpProvider<WebhookConfig, WebhookAddress>({
  name: 'webhook',
  channel: 'webhook',
  platforms: ['webhook'],
  limits: WEBHOOK_LIMITS,
  idempotent: true,
  configFromEnv: webhookConfigFromEnv,
  steps: (config, deps) => ({
    async build(request) {
      const target = checkWebhookUrl(request.address.url, { allowLoopback: config.allowLoopback });
      if (!target.ok)
        return permanent(`webhook url rejected: ${target.reason}`, undefined, { invalidAddress: true });
      if (request.message.json === undefined) return permanent('message has no json payload');
      const key = request.address.secret ? decodeSigningSecret(request.address.secret) : config.defaultKey;
      if (!key) return permanent('endpoint secret is not whsec_<base64>', undefined, { configError: true });
      return buildWebhookRequest(key, request, deps.now(), config.userAgent);
    },
    classify: classifyWebhookAnswer,
  }),
});
