// Generators of valid provider callback bodies, each with the events Herald must read from it.
// The bodies follow each provider's documented format; the expected events follow the mapping
// documented in src/callbacks (status, reason, suppression), written out here row by row.
import fc from 'fast-check';
import type { CallbackEvent } from '../../src/callbacks/types';

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
  { fields: { MessageStatus: 'delivered' }, event: { status: 'delivered' } },
  { fields: { MessageStatus: 'read' }, event: { status: 'opened' } },
  {
    fields: { MessageStatus: 'undelivered', ErrorCode: '30003' },
    event: { status: 'failed', reason: 'twilio undelivered 30003' },
  },
  {
    fields: { MessageStatus: 'undelivered', ErrorCode: '30005' },
    event: { status: 'failed', reason: 'twilio undelivered 30005', suppressAddress: true },
  },
  {
    fields: { MessageStatus: 'failed', ErrorCode: '30006' },
    event: { status: 'failed', reason: 'twilio failed 30006', suppressAddress: true },
  },
  {
    fields: { MessageStatus: 'failed', ErrorCode: '21610' },
    event: { status: 'unsubscribed', reason: 'twilio failed 21610' },
  },
  { fields: { MessageStatus: 'canceled' }, event: { status: 'failed', reason: 'twilio canceled' } },
  { fields: { MessageStatus: 'sent' } },
  { fields: { MessageStatus: 'queued' } },
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
  { fields: { event: 'delivered' }, event: { status: 'delivered' } },
  {
    fields: { event: 'bounce', type: 'bounce', status: '5.1.1' },
    event: { status: 'bounced', reason: 'sendgrid bounce 5.1.1', suppressAddress: true },
  },
  {
    fields: { event: 'bounce', type: 'blocked', status: '4.7.1' },
    event: { status: 'failed', reason: 'sendgrid blocked 4.7.1' },
  },
  {
    fields: { event: 'dropped', reason: 'Bounced Address' },
    event: { status: 'failed', reason: 'sendgrid dropped: Bounced Address' },
  },
  // Free text is never kept: it may hold the address.
  {
    fields: { event: 'dropped', reason: 'ada@example.com said no' },
    event: { status: 'failed', reason: 'sendgrid dropped' },
  },
  { fields: { event: 'open' }, event: { status: 'opened' } },
  { fields: { event: 'click', url: 'https://example.com/x' }, event: { status: 'clicked' } },
  {
    fields: { event: 'spamreport' },
    event: { status: 'complained', reason: 'sendgrid spamreport', suppressAddress: true },
  },
  { fields: { event: 'unsubscribe' }, event: { status: 'unsubscribed', reason: 'sendgrid unsubscribe' } },
  {
    fields: { event: 'group_unsubscribe' },
    event: { status: 'unsubscribed', reason: 'sendgrid group_unsubscribe' },
  },
  { fields: { event: 'processed' } },
  { fields: { event: 'deferred' } },
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
  { fields: { type: 'email.delivered' }, event: { status: 'delivered' } },
  {
    fields: { type: 'email.bounced', bounce: { type: 'Permanent', subType: 'General' } },
    event: { status: 'bounced', reason: 'resend bounce Permanent General', suppressAddress: true },
  },
  {
    fields: { type: 'email.bounced', bounce: { type: 'Transient', subType: 'MailboxFull' } },
    event: { status: 'failed', reason: 'resend bounce Transient MailboxFull' },
  },
  {
    fields: { type: 'email.bounced' },
    event: { status: 'bounced', reason: 'resend bounce', suppressAddress: true },
  },
  {
    fields: { type: 'email.complained' },
    event: { status: 'complained', reason: 'resend complaint', suppressAddress: true },
  },
  {
    fields: { type: 'email.failed', failed: { reason: 'reached_daily_quota' } },
    event: { status: 'failed', reason: 'resend failed reached_daily_quota' },
  },
  {
    fields: { type: 'email.suppressed' },
    event: { status: 'failed', reason: 'resend suppressed', suppressAddress: true },
  },
  { fields: { type: 'email.opened' }, event: { status: 'opened' } },
  { fields: { type: 'email.clicked' }, event: { status: 'clicked' } },
  { fields: { type: 'email.sent' } },
  { fields: { type: 'email.delivery_delayed' } },
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
  { fields: { event: 'delivered' }, event: { status: 'delivered' } },
  { fields: { event: 'opened' }, event: { status: 'opened' } },
  { fields: { event: 'clicked' }, event: { status: 'clicked' } },
  {
    fields: { event: 'complained' },
    event: { status: 'complained', reason: 'mailgun complained', suppressAddress: true },
  },
  { fields: { event: 'unsubscribed' }, event: { status: 'unsubscribed', reason: 'mailgun unsubscribed' } },
  {
    fields: { event: 'failed', severity: 'permanent', reason: 'bounce', 'delivery-status': { code: 550 } },
    event: { status: 'bounced', reason: 'mailgun failed bounce 550', suppressAddress: true },
  },
  {
    fields: {
      event: 'failed',
      severity: 'permanent',
      reason: 'suppress-complaint',
      'delivery-status': { code: 605 },
    },
    event: { status: 'complained', reason: 'mailgun failed suppress-complaint 605', suppressAddress: true },
  },
  {
    fields: { event: 'failed', severity: 'permanent', reason: 'suppress-unsubscribe' },
    event: { status: 'unsubscribed', reason: 'mailgun failed suppress-unsubscribe' },
  },
  {
    fields: { event: 'failed', severity: 'permanent', reason: 'old' },
    event: { status: 'failed', reason: 'mailgun failed old' },
  },
  {
    fields: { event: 'failed', severity: 'permanent', reason: 'espblock', 'delivery-status': { code: 554 } },
    event: { status: 'failed', reason: 'mailgun failed espblock 554' },
  },
  { fields: { event: 'failed', severity: 'temporary', reason: 'generic', 'delivery-status': { code: 452 } } },
  { fields: { event: 'accepted' } },
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
  { fields: { RecordType: 'Delivery' }, event: { status: 'delivered' } },
  {
    fields: { RecordType: 'Bounce', Type: 'HardBounce' },
    event: { status: 'bounced', reason: 'postmark HardBounce', suppressAddress: true },
  },
  {
    fields: { RecordType: 'Bounce', Type: 'BadEmailAddress' },
    event: { status: 'bounced', reason: 'postmark BadEmailAddress', suppressAddress: true },
  },
  {
    fields: { RecordType: 'Bounce', Type: 'SoftBounce' },
    event: { status: 'failed', reason: 'postmark SoftBounce' },
  },
  {
    fields: { RecordType: 'Bounce', Type: 'Unsubscribe' },
    event: { status: 'unsubscribed', reason: 'postmark Unsubscribe' },
  },
  {
    fields: { RecordType: 'Bounce', Type: 'SpamComplaint' },
    event: { status: 'complained', reason: 'postmark SpamComplaint', suppressAddress: true },
  },
  { fields: { RecordType: 'Bounce', Type: 'AutoResponder' } },
  {
    fields: { RecordType: 'SpamComplaint' },
    event: { status: 'complained', reason: 'postmark SpamComplaint', suppressAddress: true },
  },
  { fields: { RecordType: 'Open' }, event: { status: 'opened' } },
  { fields: { RecordType: 'Click' }, event: { status: 'clicked' } },
  {
    fields: {
      RecordType: 'SubscriptionChange',
      SuppressSending: true,
      SuppressionReason: 'ManualSuppression',
    },
    event: { status: 'unsubscribed', reason: 'postmark suppression ManualSuppression' },
  },
  {
    fields: { RecordType: 'SubscriptionChange', SuppressSending: true, SuppressionReason: 'HardBounce' },
    event: { status: 'bounced', reason: 'postmark suppression HardBounce', suppressAddress: true },
  },
  { fields: { RecordType: 'SubscriptionChange', SuppressSending: false } },
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
  { fields: { status: 'delivered', 'err-code': '0' }, event: { status: 'delivered' } },
  {
    fields: { status: 'failed', 'err-code': '1' },
    event: { status: 'failed', reason: 'vonage failed err-code 1' },
  },
  {
    fields: { status: 'failed', 'err-code': '3' },
    event: { status: 'failed', reason: 'vonage failed err-code 3', suppressAddress: true },
  },
  {
    fields: { status: 'rejected', 'err-code': '4' },
    event: { status: 'failed', reason: 'vonage rejected err-code 4', suppressAddress: true },
  },
  {
    fields: { status: 'expired', 'err-code': '5' },
    event: { status: 'failed', reason: 'vonage expired err-code 5' },
  },
  {
    fields: { status: 'failed', 'err-code': '9' },
    event: { status: 'unsubscribed', reason: 'vonage failed err-code 9' },
  },
  { fields: { status: 'accepted', 'err-code': '0' } },
  { fields: { status: 'buffered', 'err-code': '0' } },
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
