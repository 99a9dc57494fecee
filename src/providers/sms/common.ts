/** The outgoing HTTP request an SMS provider builds; `body` is the exact form-encoded text sent. */
export interface BuiltRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** SMS APIs answer within seconds; a hung connection must not hold the queue consumer. */
export const SMS_TIMEOUT_MS = 15_000;

const MAX_REASON_CHARS = 300;

/** Flattens and trims a provider message to a loggable reason. */
export function shortReason(reason: string): string {
  const flat = reason.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON_CHARS ? `${flat.slice(0, MAX_REASON_CHARS - 1)}…` : flat;
}

/** Removes a trailing slash so `${base}/path` never doubles it. */
export function trimBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
