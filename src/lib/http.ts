/**
 * Parses a `Retry-After` header (delta-seconds or HTTP-date, RFC 9110 10.2.3) into whole seconds
 * from `nowMs`. Returns undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** True for answers a well-behaved client may try again later: throttling and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** Reads a body as text without ever throwing (a broken stream is reported as empty). */
export async function safeText(response: Response, limit = 4096): Promise<string> {
  try {
    const text = await response.text();
    return text.length > limit ? text.slice(0, limit) : text;
  } catch {
    return '';
  }
}

/** Parses JSON without throwing; undefined when the body is not JSON. */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Describes a network-level failure (DNS, reset, abort) as a short reason without secrets. */
export function networkErrorReason(error: unknown): string {
  if (error instanceof Error) {
    if (isTimeout(error)) return 'timeout';
    return `network error: ${error.message.slice(0, 200)}`;
  }
  return 'network error';
}

/** Our own timeout signal firing (`AbortSignal.timeout` rejects with TimeoutError; older runtimes say AbortError). */
const isTimeout = (error: Error) => error.name === 'AbortError' || error.name === 'TimeoutError';

/**
 * Failures the runtime reports before any byte of the request left: a URL fetch cannot parse
 * (workerd: `TypeError: Invalid URL: …`), a scheme it does not speak (`TypeError: Fetch API
 * cannot load: …`), the subrequest limit (`Too many subrequests.`), a name that does not resolve
 * or a connection refused, when the runtime names them so.
 */
const NEVER_SENT = [
  /^Invalid URL\b/i,
  /^Fetch API cannot load\b/i,
  /\btoo many subrequests\b/i,
  /\b(ENOTFOUND|EAI_AGAIN|getaddrinfo|DNS lookup failed|failed to lookup address|name not resolved)\b/i,
  /\b(ECONNREFUSED|connection refused)\b/i,
];

/**
 * Whether a fetch failure proves the request never reached the provider. A timeout, a reset and
 * workerd's `Network connection lost.` do not: workerd reports a refused connection and a
 * connection dropped after the whole request was written with that same message (and a failed DNS
 * lookup as an opaque `internal error`), so anything not known to fail before sending counts as
 * maybe delivered.
 */
export function provedNeverSent(error: unknown): boolean {
  if (!(error instanceof Error) || isTimeout(error)) return false;
  return NEVER_SENT.some((pattern) => pattern.test(error.message));
}
