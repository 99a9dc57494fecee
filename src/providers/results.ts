// The result builders and the one error-class mapping every provider uses.
import { isRetryableStatus } from '../lib/http';
import type { SendResult } from './types';

const MAX_REASON_CHARS = 300;

/** Joins the parts of a reason (empty ones dropped) and flattens and trims it to a loggable size. */
export function shortReason(...parts: (string | number | undefined)[]): string {
  const joined = parts.filter((part) => part !== undefined && part !== '').join(': ');
  const flat = joined.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON_CHARS ? `${flat.slice(0, MAX_REASON_CHARS - 1)}…` : flat;
}

/** A sent result, with the provider's message id when it gave one. */
export function sent(providerMessageId?: string): SendResult {
  return providerMessageId ? { kind: 'sent', providerMessageId } : { kind: 'sent' };
}

/** Builds a retryable result, leaving `retryAfterSeconds` and `code` out when unknown. */
export function retryable(reason: string, retryAfter?: number, code?: string): SendResult {
  return {
    kind: 'retryable',
    reason,
    ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    ...(code !== undefined ? { code } : {}),
  };
}

/** The flags a permanent result may carry. */
export type PermanentFlags = { invalidAddress?: boolean; optOut?: boolean; configError?: boolean };

/** Builds a permanent result with only the flags that are set. */
export function permanent(reason: string, code?: string, flags: PermanentFlags = {}): SendResult {
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

/** The result for an answer of a known class; only a retryable one keeps `retryAfter`. */
export function resultOfClass(
  errorClass: ErrorClass,
  reason: string,
  code?: string,
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

/**
 * The class of an HTTP status no error table names: throttling and outages retry, 401/403 are a
 * configuration error, anything else is permanent. `overrides` holds a provider's documented
 * exceptions (a 404 that means the address is gone, a 403 that is only this message).
 */
export function classOfStatus(
  status: number,
  overrides: Readonly<Partial<Record<number, ErrorClass>>> = {},
): ErrorClass {
  const documented = overrides[status];
  if (documented) return documented;
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
