// SendGrid Event Webhook (signed).
// Signature: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
// (ECDSA P-256 over SHA-256 of timestamp + raw body; X-Twilio-Email-Event-Webhook-Signature is the
// base64 ASN.1 DER signature, X-Twilio-Email-Event-Webhook-Timestamp the Unix seconds; the public
// key is shown in the app as base64 DER SubjectPublicKeyInfo)
// Events: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
import { fromBase64, toHex } from '../lib/encoding';
import {
  asRecord,
  event,
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
  utf8,
} from './shared';
import type { CallbackEvent, CallbackHandler, CallbackRequest, ReplayGuard, VerifyResult } from './types';
import { CallbackConfigError } from './types';

export interface SendgridCallbackConfig {
  /** DER SubjectPublicKeyInfo bytes of the verification key. */
  publicKey: Uint8Array;
}

/**
 * Reads SENDGRID_WEBHOOK_PUBLIC_KEY as SendGrid shows it (base64 DER; a PEM block also works).
 * Null when unset; throws CallbackConfigError when set but not base64.
 */
export function sendgridCallbackConfigFromEnv(env: Record<string, unknown>): SendgridCallbackConfig | null {
  const text = readSecret(env, 'SENDGRID_WEBHOOK_PUBLIC_KEY');
  if (!text) return null;
  const base64 = text.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  const publicKey = fromBase64(base64);
  if (!publicKey || publicKey.length === 0)
    throw new CallbackConfigError('sendgrid', 'SENDGRID_WEBHOOK_PUBLIC_KEY', 'is not base64 DER');
  return { publicKey };
}

const P256_SCALAR_BYTES = 32;

/**
 * Converts an ASN.1 DER ECDSA signature, SEQUENCE { INTEGER r, INTEGER s }, into the IEEE P1363
 * r||s form WebCrypto verifies. Strict: anything but exactly that structure is undefined.
 */
export function derToP1363(der: Uint8Array, scalarBytes = P256_SCALAR_BYTES): Uint8Array | undefined {
  let offset = 0;
  const readLength = (): number | undefined => {
    const first = der[offset++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    if (first !== 0x81) return undefined; // a P-256 signature never needs more than one length byte
    const length = der[offset++];
    return length !== undefined && length >= 0x80 ? length : undefined;
  };
  const readInteger = (): Uint8Array | undefined => {
    if (der[offset++] !== 0x02) return undefined;
    const length = readLength();
    if (length === undefined || length === 0 || offset + length > der.length) return undefined;
    let value = der.subarray(offset, offset + length);
    offset += length;
    if ((value[0] ?? 0) & 0x80) return undefined; // negative: not a valid r or s
    while (value.length > 1 && value[0] === 0) value = value.subarray(1);
    return value.length <= scalarBytes ? value : undefined;
  };
  if (der[offset++] !== 0x30) return undefined;
  const sequenceLength = readLength();
  if (sequenceLength === undefined || offset + sequenceLength !== der.length) return undefined;
  const r = readInteger();
  const s = readInteger();
  if (!r || !s || offset !== der.length) return undefined;
  const raw = new Uint8Array(scalarBytes * 2);
  raw.set(r, scalarBytes - r.length);
  raw.set(s, scalarBytes * 2 - s.length);
  return raw;
}

/**
 * Verifies the Signed Event Webhook: signature over `timestamp + body`, timestamp within 5
 * minutes. With a replay guard, the same signature is refused a second time; SendGrid signs
 * each POST afresh, so a legitimate retry carries a new timestamp and signature.
 */
export function verifySendgridCallback(
  request: CallbackRequest,
  config: SendgridCallbackConfig,
  nowMs: number,
  replay?: ReplayGuard,
): Promise<VerifyResult> {
  return neverThrows(async () => {
    const signature = request.headers.get('x-twilio-email-event-webhook-signature');
    const timestampText = request.headers.get('x-twilio-email-event-webhook-timestamp');
    if (!signature || !timestampText) return refuse('missing signature');
    const timestamp = parseUnixSeconds(timestampText);
    if (timestamp === undefined) return refuse('malformed timestamp');
    if (!isFresh(timestamp, nowMs)) return refuse('stale timestamp');
    const der = fromBase64(signature);
    const raw = der && derToP1363(der);
    if (!raw) return refuse('malformed signature');
    const key = await crypto.subtle.importKey(
      'spki',
      config.publicKey,
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    );
    // The timestamp header is signed exactly as sent, not as the parsed number.
    const valid = await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      key,
      raw,
      utf8(timestampText + request.body),
    );
    if (!valid) return refuse('signature mismatch');
    // Keyed on r, not the header text: an ECDSA signature can be re-encoded or have s negated
    // and still verify, but r is fixed by the signer's nonce.
    return spendOnce(replay, `sendgrid:${timestampText}:${toHex(raw.subarray(0, P256_SCALAR_BYTES))}`);
  });
}

/** SendGrid's documented drop reasons: fixed texts, safe to keep (anything else is left out). */
const DROP_REASONS = new Set([
  'Invalid SMTPAPI header',
  'Spam Content (if Spam Checker app is enabled)',
  'Unsubscribed Address',
  'Bounced Address',
  'Spam Reporting Address',
  'Invalid',
  'Recipient List over Package Quota',
]);

/** SendGrid's `sg_message_id` is the X-Message-Id the send returned, then `.filter...` routing parts. */
function messageIdOf(record: Record<string, unknown>): string | undefined {
  const id = stringField(record, 'sg_message_id');
  return id?.split('.')[0] || undefined;
}

/** An enhanced status code such as 5.1.1 (the free-text `reason` may hold the address). */
function smtpStatus(record: Record<string, unknown>): string | undefined {
  const status = stringField(record, 'status');
  return status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(status) ? status : undefined;
}

const PLAIN: Readonly<Record<string, CallbackEvent['status']>> = {
  delivered: 'delivered',
  open: 'opened',
  click: 'clicked',
};

function toEvent(record: Record<string, unknown>): CallbackEvent | undefined {
  const base = {
    deliveryId: stringField(record, 'delivery_id'),
    providerMessageId: messageIdOf(record),
    occurredAt: isoFromUnixSeconds(record.timestamp),
  };
  const plain = plainEvent(PLAIN, record.event, base);
  if (plain) return plain;
  switch (record.event) {
    case 'bounce': {
      const status = smtpStatus(record);
      // `type: blocked` is SendGrid's temporary rejection; only `bounce` proves the address dead.
      if (record.type === 'blocked')
        return event('failed', { ...base, reason: `sendgrid blocked${status ? ` ${status}` : ''}` });
      return event('bounced', {
        ...base,
        reason: `sendgrid bounce${status ? ` ${status}` : ''}`,
        suppressAddress: true,
      });
    }
    case 'dropped': {
      const dropReason =
        typeof record.reason === 'string' && DROP_REASONS.has(record.reason) ? record.reason : '';
      return event('failed', { ...base, reason: `sendgrid dropped${dropReason ? `: ${dropReason}` : ''}` });
    }
    case 'spamreport':
      return event('complained', { ...base, reason: 'sendgrid spamreport', suppressAddress: true });
    case 'unsubscribe':
    case 'group_unsubscribe':
      return event('unsubscribed', { ...base, reason: `sendgrid ${record.event}` });
    default:
      // processed, deferred, group_resubscribe and account events carry no delivery outcome.
      return undefined;
  }
}

/** Turns the JSON array of events into callback events; `delivery_id` is Herald's custom arg. */
export function parseSendgridCallback(body: string, _headers: Headers): CallbackEvent[] {
  return parseSafely(() => {
    const events = parseJson(body);
    if (!Array.isArray(events)) return [];
    return events.flatMap((item) => {
      const record = asRecord(item);
      const parsed = record && toEvent(record);
      return parsed ? [parsed] : [];
    });
  });
}

export const sendgridCallback: CallbackHandler<SendgridCallbackConfig> = {
  configFromEnv: sendgridCallbackConfigFromEnv,
  verify: verifySendgridCallback,
  parse: parseSendgridCallback,
};
