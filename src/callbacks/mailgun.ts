// Mailgun webhooks (JSON body `{ signature: { timestamp, token, signature }, 'event-data': {...} }`).
// Signature: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
// (hex HMAC-SHA256 with the webhook signing key over timestamp + token; cache tokens to refuse
// replays, and refuse timestamps far from now)
// Events: https://documentation.mailgun.com/docs/mailgun/user-manual/events/
import { toHex } from '../lib/encoding';
import {
  asRecord,
  codeField,
  constantTimeEqual,
  event,
  hmac,
  isFresh,
  isoFromUnixSeconds,
  neverThrows,
  parseJson,
  parseSafely,
  parseUnixSeconds,
  plainEvent,
  readSecret,
  refuse,
  spendOnce,
  stringField,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';

export interface MailgunCallbackConfig {
  signingKey: string;
}

/** Reads MAILGUN_WEBHOOK_SIGNING_KEY (not the API key); null when unset. */
export function mailgunCallbackConfigFromEnv(env: Record<string, unknown>): MailgunCallbackConfig | null {
  const signingKey = readSecret(env, 'MAILGUN_WEBHOOK_SIGNING_KEY');
  return signingKey ? { signingKey } : null;
}

/**
 * Verifies the signature block. Mailgun signs only timestamp + token, not the event data, so a
 * captured signature block could be attached to any body: the token must therefore be spent
 * exactly once, which is why a replay guard is expected here (without one the check is weaker).
 */
export function verifyMailgunCallback(
  request: CallbackRequest,
  config: MailgunCallbackConfig,
  nowMs: number,
  replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const block = asRecord(asRecord(parseJson(request.body))?.signature);
    const timestampValue = block?.timestamp;
    const token = block?.token;
    const signature = block?.signature;
    if (typeof token !== 'string' || typeof signature !== 'string' || token === '')
      return refuse('missing signature');
    const timestamp = parseUnixSeconds(timestampValue);
    if (timestamp === undefined) return refuse('malformed timestamp');
    if (!isFresh(timestamp, nowMs)) return refuse('stale timestamp');
    const expected = toHex(await hmac('SHA-256', config.signingKey, `${String(timestampValue)}${token}`));
    if (!(await constantTimeEqual(expected, signature.toLowerCase()))) return refuse('signature mismatch');
    return spendOnce(replay, `mailgun:${token}`);
  });
}

/** Mailgun's send API returns the id in angle brackets; the webhook's message-id header has none. */
function bracketed(messageId: string | undefined): string | undefined {
  if (!messageId) return undefined;
  return messageId.startsWith('<') ? messageId : `<${messageId}>`;
}

/**
 * Permanent failures whose reason shows the address was not proven dead. Any other permanent
 * failure (bounce, suppress-bounce, generic, ...) is a hard bounce and suppresses.
 */
const NOT_ADDRESS_FAILURES = new Set([
  'old', // Mailgun stopped retrying a temporarily failing delivery
  'espblock', // the receiving provider blocked the sender, not the address
]);

function failedEvent(data: Record<string, unknown>, base: Omit<CallbackEvent, 'status'>): CallbackEvent[] {
  // Temporary failures are retried by Mailgun itself; a final outcome will follow.
  if (data.severity !== 'permanent') return [];
  const reasonCode = codeField(data, 'reason');
  const smtpCode = codeField(asRecord(data['delivery-status']), 'code');
  const reason = ['mailgun failed', reasonCode, smtpCode].filter(Boolean).join(' ');
  if (reasonCode === 'suppress-complaint')
    return [event('complained', { ...base, reason, suppressAddress: true })];
  if (reasonCode === 'suppress-unsubscribe') return [event('unsubscribed', { ...base, reason })];
  if (reasonCode && NOT_ADDRESS_FAILURES.has(reasonCode)) return [event('failed', { ...base, reason })];
  return [event('bounced', { ...base, reason, suppressAddress: true })];
}

const PLAIN: Readonly<Record<string, CallbackEvent['status']>> = {
  delivered: 'delivered',
  opened: 'opened',
  clicked: 'clicked',
};

/**
 * Maps `event-data.event`: delivered, opened, clicked, unsubscribed as such; complained ->
 * complained + suppress; failed -> see `failedEvent`; accepted, rejected and stored are ignored.
 * `user-variables.delivery_id` (sent as `v:delivery_id`) is Herald's delivery id.
 */
export function parseMailgunCallback(body: string, _headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const data = asRecord(asRecord(parseJson(body))?.['event-data']);
    if (!data) return [];
    const headers = asRecord(asRecord(data.message)?.headers);
    const base = {
      deliveryId: stringField(asRecord(data['user-variables']), 'delivery_id'),
      providerMessageId: bracketed(stringField(headers, 'message-id')),
      occurredAt: isoFromUnixSeconds(data.timestamp),
    };
    const plain = plainEvent(PLAIN, data.event, base);
    if (plain) return [plain];
    switch (data.event) {
      case 'failed':
        return failedEvent(data, base);
      case 'complained':
        return [event('complained', { ...base, reason: 'mailgun complained', suppressAddress: true })];
      case 'unsubscribed':
        return [event('unsubscribed', { ...base, reason: 'mailgun unsubscribed' })];
      default:
        return [];
    }
  });
}

export const mailgunCallback: CallbackHandler<MailgunCallbackConfig> = {
  configFromEnv: mailgunCallbackConfigFromEnv,
  verify: verifyMailgunCallback,
  parse: parseMailgunCallback,
};
