// Generators of valid provider callback bodies, each with the events Herald must read from it.
// The bodies follow each provider's documented format; the expected events follow the mapping
// documented in src/callbacks (status, reason, suppression), written out here row by row.
import fc from 'fast-check';
import type { CallbackEvent, CallbackStatus } from '../../src/callbacks/types';

/** A generated callback: the raw body, its Content-Type, and exactly the events it carries. */
export interface ValidCallback {
  body: string;
  contentType: string;
  events: CallbackEvent[];
}

/** The provider's fields that decide the outcome, and the event they mean (none: not an outcome). */
interface Row {
  fields: Record<string, unknown>;
  event?: Pick<CallbackEvent, 'status' | 'reason' | 'suppressAddress'>;
}

/** A row whose fields mean `status` (with `reason`), or mean no outcome when `status` is absent. */
function row(
  fields: Record<string, unknown>,
  status?: CallbackStatus,
  reason?: string,
  suppress = false,
): Row {
  if (!status) return { fields };
  return {
    fields,
    event: { status, ...(reason ? { reason } : {}), ...(suppress ? { suppressAddress: true } : {}) },
  };
}
/** The event also says the address is to be suppressed. */
const SUPPRESS = true;

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
/** Whole seconds between 2020 and 2033. */
const seconds = fc.integer({ min: 1_580_000_000, max: 2_000_000_000 });
/** Milliseconds in the same range. */
const millis = fc.integer({ min: 1_580_000_000_000, max: 2_000_000_000_000 });
const iso = (ms: number) => new Date(ms).toISOString();

/** The event a row means, with the ids and time the payload carried (absent ones left out). */
function expected(
  row: Row,
  carried: { deliveryId?: string | null; providerMessageId?: string; occurredAt?: string },
): CallbackEvent[] {
  if (!row.event) return [];
  const event: CallbackEvent = { ...row.event };
  if (carried.deliveryId) event.deliveryId = carried.deliveryId;
  if (carried.providerMessageId) event.providerMessageId = carried.providerMessageId;
  if (carried.occurredAt) event.occurredAt = carried.occurredAt;
  return [event];
}

const TWILIO: Row[] = [
  row({ MessageStatus: 'delivered' }, 'delivered'),
  row({ MessageStatus: 'read' }, 'opened'),
  row({ MessageStatus: 'undelivered', ErrorCode: '30003' }, 'failed', 'twilio undelivered 30003'),
  row({ MessageStatus: 'undelivered', ErrorCode: '30005' }, 'failed', 'twilio undelivered 30005', SUPPRESS),
  row({ MessageStatus: 'failed', ErrorCode: '30006' }, 'failed', 'twilio failed 30006', SUPPRESS),
  row({ MessageStatus: 'failed', ErrorCode: '21610' }, 'unsubscribed', 'twilio failed 21610'),
  row({ MessageStatus: 'canceled' }, 'failed', 'twilio canceled'),
  row({ MessageStatus: 'sent' }),
  row({ MessageStatus: 'queued' }),
];

/** A Twilio status callback: form-encoded, MessageSid (or the older SmsSid/SmsStatus). */
const twilio: fc.Arbitrary<ValidCallback> = fc
  .record({ row: fc.constantFrom(...TWILIO), sid: id, older: fc.boolean() })
  .map(({ row, sid, older }) => {
    const { MessageStatus, ...rest } = row.fields as { MessageStatus: string };
    const params = older
      ? { SmsSid: sid, SmsStatus: MessageStatus, ...rest }
      : { MessageSid: sid, MessageStatus, ...rest };
    return {
      body: new URLSearchParams({ AccountSid: 'AC0', To: '+14155550100', ...params }).toString(),
      contentType: 'application/x-www-form-urlencoded',
      events: expected(row, { providerMessageId: sid }),
    };
  });

const SENDGRID: Row[] = [
  row({ event: 'delivered' }, 'delivered'),
  row({ event: 'bounce', type: 'bounce', status: '5.1.1' }, 'bounced', 'sendgrid bounce 5.1.1', SUPPRESS),
  row({ event: 'bounce', type: 'blocked', status: '4.7.1' }, 'failed', 'sendgrid blocked 4.7.1'),
  row({ event: 'dropped', reason: 'Bounced Address' }, 'failed', 'sendgrid dropped: Bounced Address'),
  // Free text is never kept: it may hold the address.
  row({ event: 'dropped', reason: 'ada@example.com said no' }, 'failed', 'sendgrid dropped'),
  row({ event: 'open' }, 'opened'),
  row({ event: 'click', url: 'https://example.com/x' }, 'clicked'),
  row({ event: 'spamreport' }, 'complained', 'sendgrid spamreport', SUPPRESS),
  row({ event: 'unsubscribe' }, 'unsubscribed', 'sendgrid unsubscribe'),
  row({ event: 'group_unsubscribe' }, 'unsubscribed', 'sendgrid group_unsubscribe'),
  row({ event: 'processed' }),
  row({ event: 'deferred' }),
];

const sendgridItem = fc
  .record({
    row: fc.constantFrom(...SENDGRID),
    messageId: id,
    routing: fc.option(id, { nil: undefined }),
    deliveryId: fc.option(id),
    at: seconds,
  })
  .map(({ row, messageId, routing, deliveryId, at }) => ({
    item: {
      email: 'ada@example.com',
      timestamp: at,
      sg_message_id: routing ? `${messageId}.${routing}` : messageId,
      ...(deliveryId ? { delivery_id: deliveryId } : {}),
      ...row.fields,
    },
    events: expected(row, { deliveryId, providerMessageId: messageId, occurredAt: iso(at * 1000) }),
  }));

/** A SendGrid Event Webhook POST: a JSON array of events, read in order. */
const sendgrid: fc.Arbitrary<ValidCallback> = fc.array(sendgridItem, { maxLength: 6 }).map((items) => ({
  body: JSON.stringify(items.map((i) => i.item)),
  contentType: 'application/json',
  events: items.flatMap((i) => i.events),
}));

const RESEND: Row[] = [
  row({ type: 'email.delivered' }, 'delivered'),
  row(
    { type: 'email.bounced', bounce: { type: 'Permanent', subType: 'General' } },
    'bounced',
    'resend bounce Permanent General',
    SUPPRESS,
  ),
  row(
    { type: 'email.bounced', bounce: { type: 'Transient', subType: 'MailboxFull' } },
    'failed',
    'resend bounce Transient MailboxFull',
  ),
  row({ type: 'email.bounced' }, 'bounced', 'resend bounce', SUPPRESS),
  row({ type: 'email.complained' }, 'complained', 'resend complaint', SUPPRESS),
  row(
    { type: 'email.failed', failed: { reason: 'reached_daily_quota' } },
    'failed',
    'resend failed reached_daily_quota',
  ),
  row({ type: 'email.suppressed' }, 'failed', 'resend suppressed', SUPPRESS),
  row({ type: 'email.opened' }, 'opened'),
  row({ type: 'email.clicked' }, 'clicked'),
  row({ type: 'email.sent' }),
  row({ type: 'email.delivery_delayed' }),
];

/** A Resend webhook: one event, Herald's delivery id in the tags (object or array form). */
const resend: fc.Arbitrary<ValidCallback> = fc
  .record({
    row: fc.constantFrom(...RESEND),
    emailId: id,
    deliveryId: fc.option(id),
    tagsAsArray: fc.boolean(),
    at: millis,
  })
  .map(({ row, emailId, deliveryId, tagsAsArray, at }) => {
    const { type, ...data } = row.fields;
    const tags = tagsAsArray
      ? [
          { name: 'category', value: 'billing' },
          ...(deliveryId ? [{ name: 'delivery_id', value: deliveryId }] : []),
        ]
      : { category: 'billing', ...(deliveryId ? { delivery_id: deliveryId } : {}) };
    return {
      body: JSON.stringify({
        type,
        created_at: iso(at),
        data: { email_id: emailId, to: ['ada@example.com'], tags, ...data },
      }),
      contentType: 'application/json',
      events: expected(row, { deliveryId, providerMessageId: emailId, occurredAt: iso(at) }),
    };
  });

const MAILGUN: Row[] = [
  row({ event: 'delivered' }, 'delivered'),
  row({ event: 'opened' }, 'opened'),
  row({ event: 'clicked' }, 'clicked'),
  row({ event: 'complained' }, 'complained', 'mailgun complained', SUPPRESS),
  row({ event: 'unsubscribed' }, 'unsubscribed', 'mailgun unsubscribed'),
  row(
    { event: 'failed', severity: 'permanent', reason: 'bounce', 'delivery-status': { code: 550 } },
    'bounced',
    'mailgun failed bounce 550',
    SUPPRESS,
  ),
  row(
    {
      event: 'failed',
      severity: 'permanent',
      reason: 'suppress-complaint',
      'delivery-status': { code: 605 },
    },
    'complained',
    'mailgun failed suppress-complaint 605',
    SUPPRESS,
  ),
  row(
    { event: 'failed', severity: 'permanent', reason: 'suppress-unsubscribe' },
    'unsubscribed',
    'mailgun failed suppress-unsubscribe',
  ),
  row({ event: 'failed', severity: 'permanent', reason: 'old' }, 'failed', 'mailgun failed old'),
  row(
    { event: 'failed', severity: 'permanent', reason: 'espblock', 'delivery-status': { code: 554 } },
    'failed',
    'mailgun failed espblock 554',
  ),
  row({ event: 'failed', severity: 'temporary', reason: 'generic', 'delivery-status': { code: 452 } }),
  row({ event: 'accepted' }),
];

/** A Mailgun webhook: the signature block and one event, Herald's id in the user variables. */
const mailgun: fc.Arbitrary<ValidCallback> = fc
  .record({ row: fc.constantFrom(...MAILGUN), messageId: id, deliveryId: fc.option(id), at: seconds })
  .map(({ row, messageId, deliveryId, at }) => ({
    body: JSON.stringify({
      signature: { timestamp: String(at), token: 'token', signature: '00' },
      'event-data': {
        timestamp: at,
        recipient: 'ada@example.com',
        message: { headers: { 'message-id': `${messageId}@mg.example.com` } },
        'user-variables': deliveryId ? { delivery_id: deliveryId } : {},
        ...row.fields,
      },
    }),
    contentType: 'application/json',
    events: expected(row, {
      deliveryId,
      providerMessageId: `<${messageId}@mg.example.com>`,
      occurredAt: iso(at * 1000),
    }),
  }));

const POSTMARK: Row[] = [
  row({ RecordType: 'Delivery' }, 'delivered'),
  row({ RecordType: 'Bounce', Type: 'HardBounce' }, 'bounced', 'postmark HardBounce', SUPPRESS),
  row({ RecordType: 'Bounce', Type: 'BadEmailAddress' }, 'bounced', 'postmark BadEmailAddress', SUPPRESS),
  row({ RecordType: 'Bounce', Type: 'SoftBounce' }, 'failed', 'postmark SoftBounce'),
  row({ RecordType: 'Bounce', Type: 'Unsubscribe' }, 'unsubscribed', 'postmark Unsubscribe'),
  row({ RecordType: 'Bounce', Type: 'SpamComplaint' }, 'complained', 'postmark SpamComplaint', SUPPRESS),
  row({ RecordType: 'Bounce', Type: 'AutoResponder' }),
  row({ RecordType: 'SpamComplaint' }, 'complained', 'postmark SpamComplaint', SUPPRESS),
  row({ RecordType: 'Open' }, 'opened'),
  row({ RecordType: 'Click' }, 'clicked'),
  row(
    { RecordType: 'SubscriptionChange', SuppressSending: true, SuppressionReason: 'ManualSuppression' },
    'unsubscribed',
    'postmark suppression ManualSuppression',
  ),
  row(
    { RecordType: 'SubscriptionChange', SuppressSending: true, SuppressionReason: 'HardBounce' },
    'bounced',
    'postmark suppression HardBounce',
    SUPPRESS,
  ),
  row({ RecordType: 'SubscriptionChange', SuppressSending: false }),
];

/** Where each Postmark record type carries its time. */
const POSTMARK_TIME: Record<string, string> = {
  Delivery: 'DeliveredAt',
  Bounce: 'BouncedAt',
  SpamComplaint: 'BouncedAt',
  Open: 'ReceivedAt',
  Click: 'ReceivedAt',
  SubscriptionChange: 'ChangedAt',
};

/** The same instant written with a +02:00 offset, as Postmark may send it. */
function withOffset(ms: number): string {
  return `${new Date(ms + 2 * 3600_000).toISOString().slice(0, -1)}+02:00`;
}

/** A Postmark webhook: one record, Herald's id in the Metadata, the time with or without an offset. */
const postmark: fc.Arbitrary<ValidCallback> = fc
  .record({
    row: fc.constantFrom(...POSTMARK),
    messageId: id,
    deliveryId: fc.option(id),
    at: millis,
    offset: fc.boolean(),
  })
  .map(({ row, messageId, deliveryId, at, offset }) => ({
    body: JSON.stringify({
      MessageID: messageId,
      Recipient: 'ada@example.com',
      Metadata: deliveryId ? { delivery_id: deliveryId } : {},
      [POSTMARK_TIME[String(row.fields.RecordType)] ?? 'ReceivedAt']: offset ? withOffset(at) : iso(at),
      ...row.fields,
    }),
    contentType: 'application/json',
    events: expected(row, { deliveryId, providerMessageId: messageId, occurredAt: iso(at) }),
  }));

const VONAGE: Row[] = [
  row({ status: 'delivered', 'err-code': '0' }, 'delivered'),
  row({ status: 'failed', 'err-code': '1' }, 'failed', 'vonage failed err-code 1'),
  row({ status: 'failed', 'err-code': '3' }, 'failed', 'vonage failed err-code 3', SUPPRESS),
  row({ status: 'rejected', 'err-code': '4' }, 'failed', 'vonage rejected err-code 4', SUPPRESS),
  row({ status: 'expired', 'err-code': '5' }, 'failed', 'vonage expired err-code 5'),
  row({ status: 'failed', 'err-code': '9' }, 'unsubscribed', 'vonage failed err-code 9'),
  row({ status: 'accepted', 'err-code': '0' }),
  row({ status: 'buffered', 'err-code': '0' }),
];

/** A Vonage delivery receipt, form-encoded or JSON; `message-timestamp` is UTC `YYYY-MM-DD HH:mm:ss`. */
const vonage: fc.Arbitrary<ValidCallback> = fc
  .record({
    row: fc.constantFrom(...VONAGE),
    messageId: id,
    deliveryId: fc.option(id),
    at: seconds,
    asJson: fc.boolean(),
  })
  .map(({ row, messageId, deliveryId, at, asJson }) => {
    const params: Record<string, string> = {
      msisdn: '14155550100',
      to: 'Herald',
      messageId,
      'message-timestamp': iso(at * 1000)
        .slice(0, 19)
        .replace('T', ' '),
      ...(deliveryId ? { 'client-ref': deliveryId } : {}),
      ...(row.fields as Record<string, string>),
    };
    return {
      body: asJson ? JSON.stringify(params) : new URLSearchParams(params).toString(),
      contentType: asJson ? 'application/json' : 'application/x-www-form-urlencoded',
      events: expected(row, { deliveryId, providerMessageId: messageId, occurredAt: iso(at * 1000) }),
    };
  });

/** Per provider: valid callback bodies and exactly the events each carries. */
export const validCallbacks: Record<string, fc.Arbitrary<ValidCallback>> = {
  twilio,
  sendgrid,
  resend,
  mailgun,
  postmark,
  vonage,
};
