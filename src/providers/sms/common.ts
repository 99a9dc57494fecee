/** The outgoing HTTP request an SMS provider builds; `body` is the exact form-encoded text sent. */
/** The outgoing HTTP request a provider builds; `body` is the exact text sent. */
export type { HttpCall as BuiltRequest } from '../http-call';

/** SMS APIs answer within seconds; a hung connection must not hold the queue consumer. */
export const SMS_TIMEOUT_MS = 15_000;

export { shortReason } from '../http-call';

/** Removes a trailing slash so `${base}/path` never doubles it. */
export function trimBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
