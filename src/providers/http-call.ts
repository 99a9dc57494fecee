// The one outgoing HTTP path of every provider: timeout, redirect policy, answer reading and
// network-failure classification live here and nowhere else.
import { toBase64 } from '../lib/encoding';
import { networkErrorReason, parseRetryAfter, provedNeverSent, safeText, tryParseJson } from '../lib/http';
import { redact, shortReason } from './results';
import type { ProviderDeps, ProviderLimits, SendResult } from './types';

/** An outgoing provider request as the pure builders produce it; `body` is the exact text sent. */
export interface HttpCall {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** An HTTP Basic `Authorization` value (RFC 7617, UTF-8). */
export function basicAuth(user: string, password: string): string {
  return `Basic ${toBase64(new TextEncoder().encode(`${user}:${password}`))}`;
}

/** What the provider answered, read once and never throwing. */
export interface HttpAnswer {
  status: number;
  /** A 2xx status. */
  ok: boolean;
  headers: Headers;
  /** The body text, cut to the provider's `answerChars`. */
  body: string;
  /** The body parsed as JSON; undefined when it is not JSON (or was cut). */
  json: unknown;
  /** `Retry-After` in seconds from now, when the answer carries one. */
  retryAfterSeconds: number | undefined;
}

/** The limits a call reads: the timeout (required for an HTTP provider) and the answer size. */
export type CallLimits = ProviderLimits & { readonly timeoutMs: number };

const DEFAULT_ANSWER_CHARS = 4096;

/**
 * Sends one provider request, the plain built one or a signed `Request`, through the injected
 * fetch. Redirects are never followed: a 3xx goes to the provider's own rules, and a redirect
 * could point where an SSRF check never looked. Returns the answer, or the result of a network
 * failure or timeout (`unknown` unless the request provably never left) with `secrets` kept out of
 * its reason.
 */
export async function callHttp(
  deps: ProviderDeps,
  call: HttpCall | Request,
  limits: CallLimits,
  secrets: readonly string[] = [],
): Promise<HttpAnswer | SendResult> {
  const init = { redirect: 'manual', signal: AbortSignal.timeout(limits.timeoutMs) } as const;
  let response: Response;
  try {
    response =
      call instanceof Request
        ? await deps.fetch(call, init)
        : await deps.fetch(call.url, {
            method: call.method,
            headers: call.headers,
            body: call.body,
            ...init,
          });
  } catch (error) {
    return networkFailure(error, secrets);
  }
  const body = await safeText(response, limits.answerChars ?? DEFAULT_ANSWER_CHARS);
  return {
    status: response.status,
    ok: response.status >= 200 && response.status < 300,
    headers: response.headers,
    body,
    json: tryParseJson(body),
    retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after'), deps.now()),
  };
}

/** Returns `value[key]` when `value` is an object and that field is a string. */
export function stringField(value: unknown, key: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === 'string' ? field : undefined;
}

/** Returns `value[key]` when `value` is an object and that field is a number. */
export function numberField(value: unknown, key: string): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === 'number' ? field : undefined;
}

/** Seconds in a whole-number header (a rate-limit reset), when present. */
export function secondsHeader(headers: Headers, name: string): number | undefined {
  const value = headers.get(name)?.trim();
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** True when the call got an answer rather than a network failure. */
export const isHttpAnswer = (value: HttpAnswer | SendResult): value is HttpAnswer => 'status' in value;

/**
 * A network failure or timeout, described without any URL, which may hold a token, and without
 * `secrets`. Retryable only when the request provably never left (an unparseable URL, a refused
 * scheme, the subrequest limit, a failed name lookup or refused connection the runtime names);
 * otherwise `unknown`: after a timeout or a lost connection the provider may have the whole
 * request and may deliver it, so it must not be handed to a second provider. Redaction runs on
 * the whole message before any trimming, so a cut can never leave half a secret behind.
 */
export function networkFailure(error: unknown, secrets: readonly string[] = []): SendResult {
  const described = error instanceof Error ? error : new Error(String(error));
  const message = redact(described.message, secrets).replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '[url]');
  const safe = Object.assign(new Error(message), { name: described.name });
  const reason = shortReason(networkErrorReason(safe));
  return provedNeverSent(described) ? { kind: 'retryable', reason } : { kind: 'unknown', reason };
}
