// Postmark webhooks. Postmark does not sign webhooks; it documents HTTP Basic auth credentials
// placed in the webhook URL (https://user:pass@host/...), which arrive as `Authorization: Basic`.
// Security: https://postmarkapp.com/developer/webhooks/webhooks-overview#protecting-your-webhook
// Payloads: https://postmarkapp.com/developer/webhooks/delivery-webhook, .../bounce-webhook,
// .../spam-complaint-webhook, .../open-tracking-webhook, .../click-webhook,
// .../subscription-change-webhook; bounce types: https://postmarkapp.com/developer/api/bounce-api#bounce-types

import { fromBase64 } from '../lib/encoding';
import {
  accept,
  asRecord,
  codeField,
  constantTimeEqual,
  event,
  isoFromDateString,
  neverThrows,
  parseJson,
  parseSafely,
  plainEvent,
  readSecret,
  refuse,
  stringField,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';
import { CallbackConfigError } from './types';

export interface PostmarkCallbackConfig {
  user: string;
  password: string;
}

/**
 * Reads POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD; null when both are unset, and
 * CallbackConfigError when only one is (a half-configured credential would accept nothing).
 */
export function postmarkCallbackConfigFromEnv(env: Record<string, unknown>): PostmarkCallbackConfig | null {
  const user = readSecret(env, 'POSTMARK_WEBHOOK_USER');
  const password = readSecret(env, 'POSTMARK_WEBHOOK_PASSWORD');
  if (!user && !password) return null;
  if (!user)
    throw new CallbackConfigError('postmark', 'POSTMARK_WEBHOOK_USER', 'is required with a password');
  if (!password)
    throw new CallbackConfigError('postmark', 'POSTMARK_WEBHOOK_PASSWORD', 'is required with a user');
  if (user.includes(':'))
    throw new CallbackConfigError('postmark', 'POSTMARK_WEBHOOK_USER', 'must not contain ":"');
  return { user, password };
}

/**
 * Checks the Basic credentials. User and password are both compared, in constant time, before
 * the result is decided. Basic auth has no timestamp, so there is no freshness check.
 */
export function verifyPostmarkCallback(
  request: CallbackRequest,
  config: PostmarkCallbackConfig,
  _nowMs: number,
  _replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const header = request.headers.get('authorization');
    const match = header ? /^Basic\s+(\S+)\s*$/i.exec(header) : null;
    const bytes = match?.[1] ? fromBase64(match[1]) : undefined;
    if (!bytes) return refuse('missing credentials');
    const decoded = new TextDecoder().decode(bytes);
    const colon = decoded.indexOf(':');
    if (colon < 0) return refuse('malformed credentials');
    const [userOk, passwordOk] = await Promise.all([
      constantTimeEqual(decoded.slice(0, colon), config.user),
      constantTimeEqual(decoded.slice(colon + 1), config.password),
    ]);
    return userOk && passwordOk ? accept() : refuse('credentials mismatch');
  });
}

type BounceOutcome = 'bounced' | 'complained' | 'unsubscribed' | 'failed' | 'ignore';

/**
 * Postmark's bounce `Type`s. Only those that prove the address bad suppress; replies that are not
 * delivery failures at all (auto-responders, address-change notices, challenge mails, open relay
 * tests, subscribe requests) carry no outcome. Anything unlisted is a plain failure.
 */
const BOUNCE_TYPES: Record<string, BounceOutcome> = {
  HardBounce: 'bounced', // unknown user, mailbox not found
  BadEmailAddress: 'bounced', // invalid address
  SpamComplaint: 'complained',
  Unsubscribe: 'unsubscribed', // unsubscribe request
  AutoResponder: 'ignore',
  AddressChange: 'ignore',
  ChallengeVerification: 'ignore',
  OpenRelayTest: 'ignore',
  Subscribe: 'ignore',
};

function bounceEvents(
  payload: Record<string, unknown>,
  base: Omit<CallbackEvent, 'status'>,
): CallbackEvent[] {
  const type = codeField(payload, 'Type');
  const outcome: BounceOutcome = (type ? BOUNCE_TYPES[type] : undefined) ?? 'failed';
  const reason = `postmark ${type ?? 'bounce'}`;
  switch (outcome) {
    case 'ignore':
      return [];
    case 'bounced':
    case 'complained':
      return [event(outcome, { ...base, reason, suppressAddress: true })];
    default:
      return [event(outcome, { ...base, reason })];
  }
}

/** SubscriptionChange: SuppressSending true stops sends; the reason says why. False re-activates. */
function subscriptionEvents(
  payload: Record<string, unknown>,
  base: Omit<CallbackEvent, 'status'>,
): CallbackEvent[] {
  if (payload.SuppressSending !== true) return [];
  const why = codeField(payload, 'SuppressionReason');
  const reason = `postmark suppression${why ? ` ${why}` : ''}`;
  if (why === 'HardBounce') return [event('bounced', { ...base, reason, suppressAddress: true })];
  if (why === 'SpamComplaint') return [event('complained', { ...base, reason, suppressAddress: true })];
  return [event('unsubscribed', { ...base, reason })];
}

const PLAIN: Readonly<Record<string, CallbackEvent['status']>> = {
  Delivery: 'delivered',
  Open: 'opened',
  Click: 'clicked',
};

/**
 * Maps `RecordType`: Delivery -> delivered; Bounce -> by Type (see BOUNCE_TYPES); SpamComplaint ->
 * complained + suppress; Open -> opened; Click -> clicked; SubscriptionChange -> see above.
 * `Metadata.delivery_id` is Herald's delivery id, `MessageID` the provider message id.
 */
export function parsePostmarkCallback(body: string, _headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const payload = asRecord(parseJson(body));
    if (!payload) return [];
    const base = {
      deliveryId: stringField(asRecord(payload.Metadata), 'delivery_id'),
      providerMessageId: stringField(payload, 'MessageID'),
      occurredAt: isoFromDateString(
        payload.DeliveredAt ?? payload.BouncedAt ?? payload.ReceivedAt ?? payload.ChangedAt,
      ),
    };
    const plain = plainEvent(PLAIN, payload.RecordType, base);
    if (plain) return [plain];
    switch (payload.RecordType) {
      case 'Bounce':
        return bounceEvents(payload, base);
      case 'SpamComplaint':
        return [event('complained', { ...base, reason: 'postmark SpamComplaint', suppressAddress: true })];
      case 'SubscriptionChange':
        return subscriptionEvents(payload, base);
      default:
        return [];
    }
  });
}

export const postmarkCallback: CallbackHandler<PostmarkCallbackConfig> = {
  configFromEnv: postmarkCallbackConfigFromEnv,
  verify: verifyPostmarkCallback,
  parse: parsePostmarkCallback,
};
