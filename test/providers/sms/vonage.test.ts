import { describe, expect, it } from 'vitest';
import { isGsm7, VONAGE_LIMITS, vonage, vonageConfigFromEnv } from '../../../src/providers/sms/vonage';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  deliveryOf,
  type ExactRequest,
  expectRequest,
  formOf,
  jsonResponse,
  networkRows,
  onlyCall,
  type ProviderCase,
  sendOnce,
  textResponse,
} from '../harness';

const ENV = { VONAGE_API_KEY: 'abcd1234', VONAGE_API_SECRET: 'test-secret-0123', VONAGE_FROM: 'Herald' };
const ADDRESS = { channel: 'sms', phone: '+447700900000' } as const;

/** The form Vonage is sent for `text`, field by field in order. */
async function formFor(text: string, env: Record<string, string> = ENV) {
  const call = onlyCall((await sendOnce(vonage, env, deliveryOf(ADDRESS, { text }), accepted())).calls);
  return { call, form: new URLSearchParams(formOf(call)) };
}

/** The documented success answer shape: HTTP 200 with one status per message part. */
function accepted(...ids: string[]): Response {
  const parts = ids.length > 0 ? ids : ['0A0000000123ABCD1'];
  return jsonResponse(200, {
    'message-count': String(parts.length),
    messages: parts.map((id) => ({ to: '447700900000', 'message-id': id, status: '0', network: '23410' })),
  });
}

function rejected(status: string, errorText: string): Response {
  return jsonResponse(200, { 'message-count': '1', messages: [{ status, 'error-text': errorText }] });
}

// Request shape per https://developer.vonage.com/en/api/sms#send-an-sms
const SEND: ExactRequest = {
  url: 'https://rest.nexmo.com/sms/json',
  headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: {
    form: [
      ['api_key', 'abcd1234'],
      ['api_secret', 'test-secret-0123'],
      ['from', 'Herald'],
      ['to', '447700900000'],
      ['text', 'Your code is 123456'],
      ['client-ref', 'dlv_01JTESTDELIVERY'],
    ],
  },
};

const VONAGE: ProviderCase = {
  definition: vonage,
  env: () => ENV,
  request: () => deliveryOf(ADDRESS, { text: 'Your code is 123456' }),
  exact: () => [SEND],
  secrets: () => [ENV.VONAGE_API_SECRET],
};

describe('vonage request', () => {
  it('sets type=unicode only for text outside GSM-7', async () => {
    expect((await formFor('Привет')).form.get('type')).toBe('unicode');
    expect((await formFor('Shipped 📦')).form.get('type')).toBe('unicode');
    expect((await formFor('Price: 10€ [EU] {ok} ~ ^ | \\ Ü é ä ö ü ñ?')).form.has('type')).toBe(false);
  });

  it('honours VONAGE_BASE_URL and adds the delivery-receipt callback from PUBLIC_BASE_URL', async () => {
    const env = {
      ...ENV,
      VONAGE_BASE_URL: 'http://localhost:9998/',
      PUBLIC_BASE_URL: 'https://herald.example.com',
    };
    const { call } = await formFor('Your code is 123456', env);
    await expectRequest(call, {
      ...SEND,
      url: 'http://localhost:9998/sms/json',
      body: {
        form: [
          ...(SEND.body as { form: [string, string][] }).form,
          ['callback', 'https://herald.example.com/v1/webhooks/vonage'],
        ],
      },
    });
  });

  it('cuts client-ref to its documented 40 characters', async () => {
    const long = deliveryOf(ADDRESS, { text: 'hi' }, { deliveryId: `dlv_${'x'.repeat(60)}` });
    const call = onlyCall((await sendOnce(vonage, ENV, long, accepted())).calls);
    expect(new URLSearchParams(formOf(call)).get('client-ref')).toBe(`dlv_${'x'.repeat(36)}`);
  });

  it('declares its documented limits', () => {
    expect(vonage.limits).toBe(VONAGE_LIMITS);
    expect(VONAGE_LIMITS).toEqual({
      timeoutMs: 15_000,
      recipientsPerRequest: 1,
      documentedRatePerSecond: 30,
      fields: { clientRef: 40 },
    });
  });
});

describe('isGsm7', () => {
  it.each([
    ['plain ASCII', 'Hello, world! 0-9 @ $ _', true],
    ['extension table', '€[]{}~^|\\', true],
    ['accented letters of the alphabet', 'èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà', true],
    ['Greek capitals of the alphabet', 'ΔΦΓΛΩΠΨΣΘΞ', true],
    ['backtick is not GSM-7', 'a`b', false],
    ['emoji', '🙂', false],
    ['Cyrillic', 'д', false],
    ['lowercase Greek', 'α', false],
  ])('%s', (_name, text, expected) => {
    expect(isGsm7(text)).toBe(expected);
  });
});

const ANSWERS: AnswerRow[] = [
  {
    name: 'status 0',
    reply: accepted('0A00000001'),
    expected: { kind: 'sent', providerMessageId: '0A00000001' },
  },
  {
    name: 'multi-part, all accepted',
    reply: accepted('P1', 'P2'),
    expected: { kind: 'sent', providerMessageId: 'P1' },
  },
  {
    name: '1 throttled',
    reply: rejected('1', 'Throughput Rate Exceeded'),
    expected: { kind: 'retryable', code: '1' },
  },
  {
    name: '2 missing parameters',
    reply: rejected('2', 'Missing to param'),
    expected: { kind: 'permanent', code: '2' },
  },
  {
    name: '3 invalid parameters',
    reply: rejected('3', 'Invalid to param'),
    expected: { kind: 'permanent', code: '3' },
  },
  {
    name: '4 invalid credentials',
    reply: rejected('4', 'Bad Credentials'),
    expected: { kind: 'permanent', code: '4', configError: true },
  },
  {
    name: '5 internal error',
    reply: rejected('5', 'Internal Error'),
    expected: { kind: 'retryable', code: '5' },
  },
  {
    name: '6 invalid message',
    reply: rejected('6', 'Unroutable message'),
    expected: { kind: 'permanent', code: '6' },
  },
  {
    name: '7 number barred',
    reply: rejected('7', 'Number Barred'),
    expected: { kind: 'permanent', code: '7', invalidAddress: true },
  },
  {
    name: '8 account barred',
    reply: rejected('8', 'Partner Account Barred'),
    expected: { kind: 'permanent', code: '8', configError: true },
  },
  {
    name: '9 quota (top up and retry)',
    reply: rejected('9', 'Partner Quota Exceeded'),
    expected: { kind: 'retryable', code: '9' },
  },
  {
    name: '10 too many binds',
    reply: rejected('10', 'Too Many Existing Binds'),
    expected: { kind: 'retryable', code: '10' },
  },
  {
    name: '11 not enabled for HTTP',
    reply: rejected('11', 'Account Not Enabled For HTTP'),
    expected: { kind: 'permanent', code: '11', configError: true },
  },
  {
    name: '12 message too long',
    reply: rejected('12', 'Message Too Long'),
    expected: { kind: 'permanent', code: '12' },
  },
  {
    name: '14 invalid signature',
    reply: rejected('14', 'Invalid Signature'),
    expected: { kind: 'permanent', code: '14', configError: true },
  },
  {
    name: '15 invalid sender',
    reply: rejected('15', 'Illegal Sender Address'),
    expected: { kind: 'permanent', code: '15', configError: true },
  },
  {
    name: '22 invalid network code',
    reply: rejected('22', 'Invalid Network Code'),
    expected: { kind: 'permanent', code: '22' },
  },
  {
    name: '23 invalid callback',
    reply: rejected('23', 'Invalid Callback Url'),
    expected: { kind: 'permanent', code: '23', configError: true },
  },
  {
    name: '29 non-whitelisted destination',
    reply: rejected('29', 'Non White-listed Destination'),
    expected: { kind: 'permanent', code: '29', configError: true },
  },
  {
    name: '32 signature and secret',
    reply: rejected('32', 'Signature And API Secret Disallowed'),
    expected: { kind: 'permanent', code: '32', configError: true },
  },
  {
    name: '33 number de-activated',
    reply: rejected('33', 'Number De-activated'),
    expected: { kind: 'permanent', code: '33', invalidAddress: true },
  },
  {
    name: 'multi-part with one failed part',
    reply: jsonResponse(200, {
      'message-count': '2',
      messages: [
        { 'message-id': 'P1', status: '0' },
        { status: '1', 'error-text': 'Throttled' },
      ],
    }),
    expected: { kind: 'retryable', code: '1' },
  },
  { name: 'HTTP 500', reply: textResponse(500, 'oops'), expected: { kind: 'retryable', code: '500' } },
  {
    name: 'HTTP 429 with Retry-After',
    reply: textResponse(429, 'slow down', { 'retry-after': '3' }),
    expected: { kind: 'retryable', code: '429', retryAfterSeconds: 3 },
  },
  {
    name: 'HTTP 401',
    reply: textResponse(401, ''),
    expected: { kind: 'permanent', code: '401', configError: true },
  },
  { name: '200 without statuses', reply: jsonResponse(200, {}), expected: { kind: 'retryable' } },
];

describe('vonage answers', () => {
  answerTable(VONAGE, [...ANSWERS, ...networkRows(SEND.url)]);
});

describe('vonage configuration', () => {
  it('names every missing credential', () => {
    expect(missingCredentials(() => vonageConfigFromEnv({ VONAGE_API_KEY: 'abcd1234' })).variables).toEqual([
      'VONAGE_API_SECRET',
      'VONAGE_FROM',
    ]);
  });
});
