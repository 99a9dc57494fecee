import { describe, expect, it } from 'vitest';
import { isGsm7, vonage, vonageConfigFromEnv } from '../../../src/providers/sms/vonage';
import { missingCredentials } from '../../helpers/credentials';
import {
  depsWith,
  expectOutcome,
  failingFetch,
  jsonResponse,
  type Outcome,
  recordingFetch,
  sendRequest,
  timeoutError,
} from '../chat/harness';

const ENV = { VONAGE_API_KEY: 'abcd1234', VONAGE_API_SECRET: 'test-secret-0123', VONAGE_FROM: 'Herald' };
const ADDRESS = { channel: 'sms', phone: '+447700900000' } as const;

async function sendWith(env: Record<string, string>, text: string, response: Response = accepted()) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await vonage.create(env, depsWith(fetch)).send(sendRequest(ADDRESS, { text }));
  return { result, calls, form: new URLSearchParams(calls[0]?.body) };
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

describe('vonage request', () => {
  it('posts the documented form to /sms/json', async () => {
    const { calls, form } = await sendWith(ENV, 'Your code is 123456');
    expect(calls[0]?.request.url).toBe('https://rest.nexmo.com/sms/json');
    expect(calls[0]?.request.method).toBe('POST');
    expect(calls[0]?.request.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(form)).toEqual({
      api_key: 'abcd1234',
      api_secret: 'test-secret-0123',
      from: 'Herald',
      to: '447700900000',
      text: 'Your code is 123456',
      'client-ref': 'dlv_01JTESTDELIVERY',
    });
  });

  it('sets type=unicode only for text outside GSM-7', async () => {
    expect((await sendWith(ENV, 'Привет')).form.get('type')).toBe('unicode');
    expect((await sendWith(ENV, 'Shipped 📦')).form.get('type')).toBe('unicode');
    expect((await sendWith(ENV, 'Price: 10€ [EU] {ok} ~ ^ | \\ Ü é ä ö ü ñ?')).form.has('type')).toBe(false);
  });

  it('honours VONAGE_BASE_URL and adds the delivery-receipt callback from PUBLIC_BASE_URL', async () => {
    const env = {
      ...ENV,
      VONAGE_BASE_URL: 'http://localhost:9998/',
      PUBLIC_BASE_URL: 'https://herald.example.com',
    };
    const { calls, form } = await sendWith(env, 'hi');
    expect(calls[0]?.request.url).toBe('http://localhost:9998/sms/json');
    expect(form.get('callback')).toBe('https://herald.example.com/v1/webhooks/vonage');
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

const ANSWERS: [string, () => Response, Outcome][] = [
  ['status 0', () => accepted('0A00000001'), { kind: 'sent', providerMessageId: '0A00000001' }],
  ['multi-part, all accepted', () => accepted('P1', 'P2'), { kind: 'sent', providerMessageId: 'P1' }],
  ['1 throttled', () => rejected('1', 'Throughput Rate Exceeded'), { kind: 'retryable', code: '1' }],
  ['2 missing parameters', () => rejected('2', 'Missing to param'), { kind: 'permanent', code: '2' }],
  ['3 invalid parameters', () => rejected('3', 'Invalid to param'), { kind: 'permanent', code: '3' }],
  [
    '4 invalid credentials',
    () => rejected('4', 'Bad Credentials'),
    { kind: 'permanent', code: '4', configError: true },
  ],
  ['5 internal error', () => rejected('5', 'Internal Error'), { kind: 'retryable', code: '5' }],
  ['6 invalid message', () => rejected('6', 'Unroutable message'), { kind: 'permanent', code: '6' }],
  [
    '7 number barred',
    () => rejected('7', 'Number Barred'),
    { kind: 'permanent', code: '7', invalidAddress: true },
  ],
  [
    '8 account barred',
    () => rejected('8', 'Partner Account Barred'),
    { kind: 'permanent', code: '8', configError: true },
  ],
  [
    '9 quota (top up and retry)',
    () => rejected('9', 'Partner Quota Exceeded'),
    { kind: 'retryable', code: '9' },
  ],
  ['10 too many binds', () => rejected('10', 'Too Many Existing Binds'), { kind: 'retryable', code: '10' }],
  [
    '11 not enabled for HTTP',
    () => rejected('11', 'Account Not Enabled For HTTP'),
    { kind: 'permanent', code: '11', configError: true },
  ],
  ['12 message too long', () => rejected('12', 'Message Too Long'), { kind: 'permanent', code: '12' }],
  [
    '14 invalid signature',
    () => rejected('14', 'Invalid Signature'),
    { kind: 'permanent', code: '14', configError: true },
  ],
  [
    '15 invalid sender',
    () => rejected('15', 'Illegal Sender Address'),
    { kind: 'permanent', code: '15', configError: true },
  ],
  [
    '22 invalid network code',
    () => rejected('22', 'Invalid Network Code'),
    { kind: 'permanent', code: '22' },
  ],
  [
    '23 invalid callback',
    () => rejected('23', 'Invalid Callback Url'),
    { kind: 'permanent', code: '23', configError: true },
  ],
  [
    '29 non-whitelisted destination',
    () => rejected('29', 'Non White-listed Destination'),
    { kind: 'permanent', code: '29', configError: true },
  ],
  [
    '32 signature and secret',
    () => rejected('32', 'Signature And API Secret Disallowed'),
    { kind: 'permanent', code: '32', configError: true },
  ],
  [
    '33 number de-activated',
    () => rejected('33', 'Number De-activated'),
    { kind: 'permanent', code: '33', invalidAddress: true },
  ],
  [
    'multi-part with one failed part',
    () =>
      jsonResponse(200, {
        'message-count': '2',
        messages: [
          { 'message-id': 'P1', status: '0' },
          { status: '1', 'error-text': 'Throttled' },
        ],
      }),
    { kind: 'retryable', code: '1' },
  ],
  ['HTTP 500', () => new Response('oops', { status: 500 }), { kind: 'retryable', code: '500' }],
  [
    'HTTP 429 with Retry-After',
    () => new Response('slow down', { status: 429, headers: { 'retry-after': '3' } }),
    { kind: 'retryable', code: '429', retryAfterSeconds: 3 },
  ],
  [
    'HTTP 401',
    () => new Response('', { status: 401 }),
    { kind: 'permanent', code: '401', configError: true },
  ],
  ['200 without statuses', () => jsonResponse(200, {}), { kind: 'retryable' }],
];

describe('vonage answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await sendWith(ENV, 'hello', response());
    expectOutcome(result, expected);
    if (result.kind !== 'sent') expect(result.reason).not.toContain(ENV.VONAGE_API_SECRET);
  });

  it.each([
    ['network error', new TypeError('Network connection lost.'), /network error/],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable', async (_name, error, reason) => {
    const result = await vonage
      .create(ENV, depsWith(failingFetch(error)))
      .send(sendRequest(ADDRESS, { text: 'x' }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
  });
});

describe('vonage configuration', () => {
  it('names every missing credential', () => {
    expect(missingCredentials(() => vonageConfigFromEnv({ VONAGE_API_KEY: 'abcd1234' })).variables).toEqual([
      'VONAGE_API_SECRET',
      'VONAGE_FROM',
    ]);
  });
});
