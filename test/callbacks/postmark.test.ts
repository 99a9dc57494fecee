import { describe, expect, it } from 'vitest';
import {
  parsePostmarkCallback,
  postmarkCallbackConfigFromEnv,
  verifyPostmarkCallback,
} from '../../src/callbacks/postmark';
import { CallbackConfigError, type CallbackEvent } from '../../src/callbacks/types';
import { base64, refused, request } from './helpers';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const CONFIG = { user: 'herald', password: 'p4ss:w0rd-with-colon' };
const basic = (credentials: string) => `Basic ${base64(new TextEncoder().encode(credentials))}`;
const withAuth = (authorization?: string) =>
  request({
    headers: authorization ? { authorization, 'content-type': 'application/json' } : {},
    body: '{}',
  });

describe('postmark callback config', () => {
  it('is null when neither variable is set and reads both', () => {
    expect(postmarkCallbackConfigFromEnv({})).toBeNull();
    expect(
      postmarkCallbackConfigFromEnv({ POSTMARK_WEBHOOK_USER: 'herald', POSTMARK_WEBHOOK_PASSWORD: 'secret' }),
    ).toEqual({ user: 'herald', password: 'secret' });
  });

  it.each([
    [{ POSTMARK_WEBHOOK_USER: 'herald' }],
    [{ POSTMARK_WEBHOOK_PASSWORD: 'secret' }],
    [{ POSTMARK_WEBHOOK_USER: 'her:ald', POSTMARK_WEBHOOK_PASSWORD: 'secret' }],
  ])('refuses a half or unusable credential %j', (env) => {
    expect(() => postmarkCallbackConfigFromEnv(env)).toThrow(CallbackConfigError);
  });
});

describe('postmark basic auth', () => {
  it('accepts the configured credentials (a colon in the password is kept)', async () => {
    expect(await verifyPostmarkCallback(withAuth(basic('herald:p4ss:w0rd-with-colon')), CONFIG, NOW)).toEqual(
      {
        ok: true,
      },
    );
    expect(
      await verifyPostmarkCallback(
        withAuth(`basic  ${basic('herald:p4ss:w0rd-with-colon').slice(6)}`),
        CONFIG,
        NOW,
      ),
    ).toEqual({
      ok: true,
    });
  });

  it.each([
    ['a wrong password', basic('herald:p4ss:w0rd-with-colo'), 'credentials mismatch'],
    ['a wrong user', basic('Herald:p4ss:w0rd-with-colon'), 'credentials mismatch'],
    ['the password as user', basic('p4ss:w0rd-with-colon:herald'), 'credentials mismatch'],
    ['empty credentials', basic(':'), 'credentials mismatch'],
    ['no colon', basic('heraldp4ss'), 'malformed credentials'],
    ['a Bearer token', 'Bearer abc', 'missing credentials'],
    ['non-base64 credentials', 'Basic %%%', 'missing credentials'],
  ])('refuses %s', async (_name, authorization, reason) => {
    expect(await verifyPostmarkCallback(withAuth(authorization), CONFIG, NOW)).toEqual({ ok: false, reason });
  });

  it('refuses a request without Authorization', async () => {
    expect(await verifyPostmarkCallback(withAuth(), CONFIG, NOW)).toEqual(refused('missing credentials'));
  });
});

describe('postmark event parsing', () => {
  const metadata = { a_key: 'a_value', delivery_id: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz' };
  const messageId = '883953f4-6105-42a2-a16a-77a8eac79483';
  const base = { deliveryId: 'dlv_01hzzzzzzzzzzzzzzzzzzzzzzz', providerMessageId: messageId };

  // Payloads shaped like Postmark's webhook documentation examples.
  const delivery = {
    RecordType: 'Delivery',
    ServerID: 23,
    MessageStream: 'outbound',
    MessageID: messageId,
    Recipient: 'john@example.com',
    Tag: 'welcome-email',
    DeliveredAt: '2019-11-05T16:33:54.9070259Z',
    Details: 'Test delivery webhook details',
    Metadata: metadata,
  };
  const bounce = (type: string, typeCode: number) => ({
    RecordType: 'Bounce',
    MessageStream: 'outbound',
    ID: 42,
    Type: type,
    TypeCode: typeCode,
    Name: 'Hard bounce',
    Tag: 'Test',
    MessageID: messageId,
    Metadata: metadata,
    ServerID: 23,
    Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
    Details: 'Test bounce details',
    Email: 'john@example.com',
    From: 'sender@example.com',
    BouncedAt: '2019-11-05T16:33:54.9070259Z',
    DumpAvailable: true,
    Inactive: true,
    CanActivate: true,
    Subject: 'Test subject',
    Content: '<Full dump of bounce>',
  });
  const at = '2019-11-05T16:33:54.907Z';

  const rows: [string, Record<string, unknown>, CallbackEvent[]][] = [
    ['Delivery', delivery, [{ status: 'delivered', ...base, occurredAt: at }]],
    [
      'Bounce HardBounce',
      bounce('HardBounce', 1),
      [{ status: 'bounced', ...base, occurredAt: at, reason: 'postmark HardBounce', suppressAddress: true }],
    ],
    [
      'Bounce BadEmailAddress',
      bounce('BadEmailAddress', 100000),
      [
        {
          status: 'bounced',
          ...base,
          occurredAt: at,
          reason: 'postmark BadEmailAddress',
          suppressAddress: true,
        },
      ],
    ],
    [
      'Bounce SoftBounce',
      bounce('SoftBounce', 4096),
      [{ status: 'failed', ...base, occurredAt: at, reason: 'postmark SoftBounce' }],
    ],
    [
      'Bounce Transient',
      bounce('Transient', 2),
      [{ status: 'failed', ...base, occurredAt: at, reason: 'postmark Transient' }],
    ],
    [
      'Bounce DnsError',
      bounce('DnsError', 256),
      [{ status: 'failed', ...base, occurredAt: at, reason: 'postmark DnsError' }],
    ],
    [
      'Bounce Blocked',
      bounce('Blocked', 100006),
      [{ status: 'failed', ...base, occurredAt: at, reason: 'postmark Blocked' }],
    ],
    [
      'Bounce SpamComplaint',
      bounce('SpamComplaint', 100001),
      [
        {
          status: 'complained',
          ...base,
          occurredAt: at,
          reason: 'postmark SpamComplaint',
          suppressAddress: true,
        },
      ],
    ],
    [
      'Bounce Unsubscribe',
      bounce('Unsubscribe', 16),
      [{ status: 'unsubscribed', ...base, occurredAt: at, reason: 'postmark Unsubscribe' }],
    ],
    ['Bounce AutoResponder (not a failure)', bounce('AutoResponder', 64), []],
    ['Bounce AddressChange (not a failure)', bounce('AddressChange', 128), []],
    [
      'SpamComplaint record',
      { ...bounce('SpamComplaint', 100001), RecordType: 'SpamComplaint' },
      [
        {
          status: 'complained',
          ...base,
          occurredAt: at,
          reason: 'postmark SpamComplaint',
          suppressAddress: true,
        },
      ],
    ],
    [
      'Open',
      {
        RecordType: 'Open',
        MessageStream: 'outbound',
        FirstOpen: true,
        Platform: 'WebMail',
        MessageID: messageId,
        Metadata: metadata,
        ReceivedAt: '2019-11-05T16:33:54.9070259Z',
        Recipient: 'john@example.com',
      },
      [{ status: 'opened', ...base, occurredAt: at }],
    ],
    [
      'Click',
      {
        RecordType: 'Click',
        MessageStream: 'outbound',
        ClickLocation: 'HTML',
        OriginalLink: 'https://example.com',
        MessageID: messageId,
        Metadata: metadata,
        ReceivedAt: '2019-11-05T16:33:54.9070259Z',
        Recipient: 'john@example.com',
      },
      [{ status: 'clicked', ...base, occurredAt: at }],
    ],
    [
      'SubscriptionChange: manual suppression',
      {
        RecordType: 'SubscriptionChange',
        MessageID: messageId,
        ServerID: 123456,
        MessageStream: 'outbound',
        ChangedAt: '2020-02-01T10:53:34.416071Z',
        Recipient: 'bounced-address@wildbit.com',
        Origin: 'Recipient',
        SuppressSending: true,
        SuppressionReason: 'ManualSuppression',
        Tag: 'my-tag',
        Metadata: metadata,
      },
      [
        {
          status: 'unsubscribed',
          ...base,
          occurredAt: '2020-02-01T10:53:34.416Z',
          reason: 'postmark suppression ManualSuppression',
        },
      ],
    ],
    [
      'SubscriptionChange: hard bounce suppression',
      {
        RecordType: 'SubscriptionChange',
        MessageID: messageId,
        ChangedAt: '2020-02-01T10:53:34.416071Z',
        SuppressSending: true,
        SuppressionReason: 'HardBounce',
        Metadata: metadata,
      },
      [
        {
          status: 'bounced',
          ...base,
          occurredAt: '2020-02-01T10:53:34.416Z',
          reason: 'postmark suppression HardBounce',
          suppressAddress: true,
        },
      ],
    ],
    [
      'SubscriptionChange: reactivation',
      { RecordType: 'SubscriptionChange', MessageID: messageId, SuppressSending: false, Metadata: metadata },
      [],
    ],
    ['Inbound (not a delivery record)', { FromFull: { Email: 'x@example.com' }, MessageID: messageId }, []],
  ];

  it.each(rows)('%s', (_name, payload, expected) => {
    expect(parsePostmarkCallback(JSON.stringify(payload), new Headers())).toEqual(expected);
  });

  it('handles a record without Metadata (sent outside Herald)', () => {
    const { Metadata: _ignored, ...bare } = delivery;
    expect(parsePostmarkCallback(JSON.stringify(bare), new Headers())).toEqual([
      { status: 'delivered', providerMessageId: messageId, occurredAt: at },
    ]);
  });
});
