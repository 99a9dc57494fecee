// Standard Webhooks signing: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus } from '../../lib/http';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import { callHttp, isHttpAnswer, shortReason } from '../http-call';
import {
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';

type WebhookAddress = AddressOf<'webhook'>;

export interface WebhookConfig {
  /** Raw HMAC key decoded from WEBHOOK_SIGNING_SECRET (`whsec_<base64>`), used when an endpoint has none. */
  defaultKey: Uint8Array;
  /** Loopback targets (plain http to localhost) only when ENVIRONMENT is exactly 'development'. */
  allowLoopback: boolean;
  userAgent: string;
}

/** The exact request a webhook delivery sends; `body` is the signed JSON text. */
export interface BuiltWebhookRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

export const WEBHOOK_TIMEOUT_MS = 15_000;
export const WEBHOOK_USER_AGENT = 'Herald-Webhooks/1.0 (+https://www.standardwebhooks.com)';

const SECRET_PREFIX = 'whsec_';

/** Reads WEBHOOK_SIGNING_SECRET (required, `whsec_<base64>`) and ENVIRONMENT. */
export function webhookConfigFromEnv(env: ProviderEnv): WebhookConfig {
  const { WEBHOOK_SIGNING_SECRET } = requireVars(env, 'webhook', ['WEBHOOK_SIGNING_SECRET']);
  const defaultKey = decodeSigningSecret(WEBHOOK_SIGNING_SECRET);
  if (!defaultKey) throw new Error('WEBHOOK_SIGNING_SECRET must be whsec_ followed by base64');
  return {
    defaultKey,
    allowLoopback: readVar(env, 'ENVIRONMENT') === 'development',
    userAgent: WEBHOOK_USER_AGENT,
  };
}

/**
 * Decodes a Standard Webhooks secret: an optional `whsec_` prefix, then base64 of the raw key.
 * Returns undefined when the secret is not valid base64 or is empty.
 */
export function decodeSigningSecret(secret: string): Uint8Array | undefined {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  try {
    const binary = atob(encoded);
    if (binary.length === 0) return undefined;
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
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
  return `v1,${btoa(String.fromCharCode(...new Uint8Array(mac)))}`;
}

/**
 * Builds the signed POST. `webhook-id` is the delivery id, so a receiver can drop a redelivery;
 * `nowMs` becomes `webhook-timestamp` in whole seconds.
 */
export async function buildWebhookRequest(
  key: Uint8Array,
  request: SendRequest<WebhookAddress>,
  nowMs: number,
  userAgent = WEBHOOK_USER_AGENT,
): Promise<BuiltWebhookRequest> {
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

/** Maps the endpoint's status to a SendResult. Redirects are never followed: a 3xx is permanent. */
export function classifyWebhookResponse(status: number, body: string, retryAfter?: number): SendResult {
  if (status >= 200 && status < 300) return { kind: 'sent' };
  const snippet = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  const reason = shortReason(`endpoint answered ${status}${snippet ? `: ${snippet}` : ''}`);
  const code = String(status);
  if (isRetryableStatus(status)) {
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  if (status === 410) return { kind: 'permanent', reason, code, invalidAddress: true };
  if (status >= 300 && status < 400) {
    return {
      kind: 'permanent',
      reason: `endpoint answered ${status} redirect (redirects are not followed)`,
      code,
    };
  }
  return { kind: 'permanent', reason, code };
}

/** Describes a network failure without any URL: the customer's URL may carry a token in its query. */

/** Creates the webhook provider; the default key's CryptoKey import is cheap, so no cache is kept. */
export function createWebhookProvider(config: WebhookConfig, deps: ProviderDeps): Provider<WebhookAddress> {
  return {
    name: 'webhook',
    channel: 'webhook',
    platforms: ['webhook'],
    async send(request) {
      const target = checkWebhookUrl(request.address.url, { allowLoopback: config.allowLoopback });
      if (!target.ok) {
        return { kind: 'permanent', reason: `webhook url rejected: ${target.reason}`, invalidAddress: true };
      }
      if (request.message.json === undefined) {
        return { kind: 'permanent', reason: 'message has no json payload' };
      }
      const key = request.address.secret ? decodeSigningSecret(request.address.secret) : config.defaultKey;
      if (!key)
        return { kind: 'permanent', reason: 'endpoint secret is not whsec_<base64>', configError: true };
      const built = await buildWebhookRequest(key, request, deps.now(), config.userAgent);
      const answer = await callHttp(deps, built, {
        timeoutMs: WEBHOOK_TIMEOUT_MS,
        redirect: 'manual',
        maxBodyChars: 1024,
      });
      if (!isHttpAnswer(answer)) return answer;
      return classifyWebhookResponse(answer.status, answer.body, answer.retryAfterSeconds);
    },
  };
}

/** Signed HTTP webhooks (Standard Webhooks) on the webhook channel. */
export const webhook: ProviderDefinition = {
  name: 'webhook',
  channel: 'webhook',
  platforms: ['webhook'],
  create: (env, deps) => createWebhookProvider(webhookConfigFromEnv(env), deps),
};
