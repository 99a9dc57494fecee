import { isRetryableStatus, networkErrorReason, parseRetryAfter, safeText } from '../lib/http';
import type { ProviderDeps, SendResult } from './types';

/** An outgoing provider request as the pure builders produce it. */
export interface HttpCall {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** What the provider answered: its status, its body text and its Retry-After in seconds. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
  retryAfterSeconds: number | undefined;
}

export interface HttpCallOptions {
  timeoutMs: number;
  /** `manual` where the target comes from user data: a redirect could point past the SSRF guard. */
  redirect?: 'manual' | 'follow';
  maxBodyChars?: number;
  /** How a network failure or timeout is reported (default: retryable with a short reason). */
  onNetworkError?: (error: unknown) => SendResult;
}

/**
 * Sends one provider request through the injected fetch with a timeout, and reads the answer
 * without ever throwing. The provider's own rules then classify it.
 */
export async function callHttp(
  deps: ProviderDeps,
  call: HttpCall,
  options: HttpCallOptions,
): Promise<HttpAnswer | SendResult> {
  let response: Response;
  try {
    response = await deps.fetch(call.url, {
      method: call.method,
      headers: call.headers,
      body: call.body,
      ...(options.redirect ? { redirect: options.redirect } : {}),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    return options.onNetworkError?.(error) ?? networkFailure(error);
  }
  return {
    status: response.status,
    headers: response.headers,
    body: await safeText(response, options.maxBodyChars ?? 4096),
    retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after'), deps.now()),
  };
}

export const isHttpAnswer = (value: HttpAnswer | SendResult): value is HttpAnswer => 'status' in value;

const MAX_REASON_CHARS = 300;

/** Flattens and trims a provider message to a loggable reason. */
export function shortReason(reason: string): string {
  const flat = reason.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON_CHARS ? `${flat.slice(0, MAX_REASON_CHARS - 1)}…` : flat;
}

/** Builds a retryable result, leaving `retryAfterSeconds` out when unknown. */
export function retryable(reason: string, retryAfter?: number, code?: string): SendResult {
  return {
    kind: 'retryable',
    reason,
    ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    ...(code !== undefined ? { code } : {}),
  };
}

/** Builds a permanent result with only the flags that are set. */
export function permanent(
  reason: string,
  code?: string,
  flags: { invalidAddress?: boolean; optOut?: boolean; configError?: boolean } = {},
): SendResult {
  return {
    kind: 'permanent',
    reason,
    ...(code !== undefined ? { code } : {}),
    ...(flags.invalidAddress ? { invalidAddress: true } : {}),
    ...(flags.optOut ? { optOut: true } : {}),
    ...(flags.configError ? { configError: true } : {}),
  };
}

/** How a provider's documented error table classes an answer. */
export type ErrorClass = 'retryable' | 'permanent' | 'invalidAddress' | 'optOut' | 'configError';

/** The result for an answer of a known class. */
export function resultOfClass(
  errorClass: ErrorClass,
  reason: string,
  code: string,
  retryAfter?: number,
): SendResult {
  switch (errorClass) {
    case 'retryable':
      return retryable(reason, retryAfter, code);
    case 'permanent':
      return permanent(reason, code);
    default:
      return permanent(reason, code, { [errorClass]: true });
  }
}

/** The class of an HTTP status no error table names: throttling and outages retry, auth is config. */
export function classOfStatus(status: number): ErrorClass {
  if (isRetryableStatus(status)) return 'retryable';
  if (status === 401 || status === 403) return 'configError';
  return 'permanent';
}

/** Removes every secret (webhook URL, bot token) from a reason before it is logged or stored. */
export function redact(reason: string, secrets: readonly string[]): string {
  return secrets
    .filter((secret) => secret.length > 0)
    .reduce((text, secret) => text.split(secret).join('[redacted]'), reason);
}

/**
 * A network failure or timeout (retryable), described without any URL, which may hold a token,
 * and without `secrets`. Redaction runs
 * on the whole message before any trimming, so a cut can never leave half a secret behind.
 */
export function networkFailure(error: unknown, secrets: readonly string[] = []): SendResult {
  const described = error instanceof Error ? error : new Error(String(error));
  const message = redact(described.message, secrets).replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '[url]');
  const safe = Object.assign(new Error(message), { name: described.name });
  return { kind: 'retryable', reason: shortReason(networkErrorReason(safe)) };
}
