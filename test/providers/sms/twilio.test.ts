import { describe, expect, it } from 'vitest';
import { TWILIO_LIMITS, twilio, twilioConfigFromEnv } from '../../../src/providers/sms/twilio';
import { MissingCredentialsError } from '../../../src/providers/types';
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

const SID = 'ACtest0000000000000000000000000000';
const TOKEN = 'test-auth-token';
const ENV = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_FROM: '+15005550006' };
const REQUEST = deliveryOf(
  { channel: 'sms', phone: '+447700900123' },
  { text: 'Your order shipped 📦 & is on its way' },
);

/** Twilio's documented success answer (abridged). */
const CREATED = { sid: 'SM1234567890abcdef1234567890abcdef', status: 'queued' };

// Request shape per https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
const SEND: ExactRequest = {
  url: `https://api.twilio.com/2010-04-01/Accounts/${SID}/Messages.json`,
  headers: {
    authorization: `Basic ${btoa(`${SID}:${TOKEN}`)}`,
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  },
  body: {
    form: [
      ['To', '+447700900123'],
      ['From', '+15005550006'],
      ['Body', 'Your order shipped 📦 & is on its way'],
    ],
  },
};

const TWILIO: ProviderCase = {
  definition: twilio,
  env: () => ENV,
  request: () => REQUEST,
  exact: () => [SEND],
  secrets: () => [TOKEN, btoa(`${SID}:${TOKEN}`)],
};

describe('twilio request', () => {
  it('uses the Messaging Service instead of From when configured, and sets StatusCallback', async () => {
    const env = {
      ...ENV,
      TWILIO_MESSAGING_SERVICE_SID: 'MGtest000000000000000000000000000',
      PUBLIC_BASE_URL: 'https://herald.example.com/',
      TWILIO_BASE_URL: 'http://localhost:9999/',
    };
    const { calls } = await sendOnce(twilio, env, REQUEST, jsonResponse(201, CREATED));
    await expectRequest(calls[0], {
      ...SEND,
      url: `http://localhost:9999/2010-04-01/Accounts/${SID}/Messages.json`,
      body: {
        form: [
          ['To', '+447700900123'],
          ['MessagingServiceSid', 'MGtest000000000000000000000000000'],
          ['Body', 'Your order shipped 📦 & is on its way'],
          // The delivery id rides in the (signed) callback URL, so status callbacks find their delivery.
          ['StatusCallback', 'https://herald.example.com/v1/webhooks/twilio?deliveryId=dlv_01JTESTDELIVERY'],
        ],
      },
    });
  });

  it('authenticates as SID:token and sets no StatusCallback without PUBLIC_BASE_URL', async () => {
    const call = onlyCall((await sendOnce(twilio, ENV, REQUEST, jsonResponse(201, CREATED))).calls);
    const auth = call.request.headers.get('authorization') ?? '';
    expect(atob(auth.slice('Basic '.length))).toBe(`${SID}:${TOKEN}`);
    expect(formOf(call).map(([name]) => name)).not.toContain('StatusCallback');
  });

  it('declares its documented limits', () => {
    expect(twilio.limits).toBe(TWILIO_LIMITS);
    expect(TWILIO_LIMITS).toEqual({ timeoutMs: 15_000, recipientsPerRequest: 1, fields: { body: 1600 } });
  });
});

const twilioError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
  jsonResponse(
    status,
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    headers,
  );

const ANSWERS: AnswerRow[] = [
  {
    name: '201 created',
    reply: jsonResponse(201, CREATED),
    expected: { kind: 'sent', providerMessageId: CREATED.sid },
  },
  {
    name: '21610 unsubscribed recipient',
    reply: twilioError(400, 21610, 'Attempt to send to unsubscribed recipient'),
    expected: { kind: 'permanent', code: '21610', optOut: true },
  },
  {
    name: '21211 invalid To',
    reply: twilioError(400, 21211, "The 'To' number +4477 is not a valid phone number."),
    expected: { kind: 'permanent', code: '21211', invalidAddress: true },
  },
  {
    name: '21614 not a mobile number',
    reply: twilioError(400, 21614, "'To' number is not a valid mobile number"),
    expected: { kind: 'permanent', code: '21614', invalidAddress: true },
  },
  {
    name: '21635 landline',
    reply: twilioError(400, 21635, "'To' number cannot be a landline"),
    expected: { kind: 'permanent', code: '21635', invalidAddress: true },
  },
  {
    name: '21612 unreachable combination',
    reply: twilioError(400, 21612, "The 'To' phone number is not currently reachable"),
    expected: { kind: 'permanent', code: '21612' },
  },
  {
    name: '21408 region not enabled',
    reply: twilioError(400, 21408, 'Permission to send an SMS has not been enabled for the region'),
    expected: { kind: 'permanent', code: '21408', configError: true },
  },
  {
    name: '21608 unverified on trial',
    reply: twilioError(400, 21608, "The 'To' phone number provided is not yet verified"),
    expected: { kind: 'permanent', code: '21608', configError: true },
  },
  {
    name: '20003 authentication',
    reply: twilioError(401, 20003, 'Authenticate'),
    expected: { kind: 'permanent', code: '20003', configError: true },
  },
  {
    name: '21606 bad From',
    reply: twilioError(400, 21606, "The 'From' phone number provided is not a valid message-capable number"),
    expected: { kind: 'permanent', code: '21606', configError: true },
  },
  {
    name: '21659 From not a Twilio number',
    reply: twilioError(400, 21659, "'From' is not a Twilio phone number"),
    expected: { kind: 'permanent', code: '21659', configError: true },
  },
  {
    name: '21617 body too long',
    reply: twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit'),
    expected: { kind: 'permanent', code: '21617' },
  },
  {
    name: '20429 too many requests with Retry-After',
    reply: twilioError(429, 20429, 'Too Many Requests', { 'retry-after': '7' }),
    expected: { kind: 'retryable', code: '20429', retryAfterSeconds: 7 },
  },
  {
    name: '21611 From queue full',
    reply: twilioError(400, 21611, "This 'From' number has exceeded the maximum number of queued messages"),
    expected: { kind: 'retryable', code: '21611' },
  },
  {
    name: '503 without JSON',
    reply: textResponse(503, 'upstream down'),
    expected: { kind: 'retryable', code: '503' },
  },
  {
    name: '500 with JSON error',
    reply: twilioError(500, 20500, 'Internal Server Error'),
    expected: { kind: 'retryable', code: '20500' },
  },
  {
    name: 'unknown 4xx code',
    reply: twilioError(400, 21999, 'Something else'),
    expected: { kind: 'permanent', code: '21999' },
  },
];

describe('twilio answers', () => {
  // Every answer's reason names Twilio and the code it classified by.
  const named = ANSWERS.map((row) =>
    row.expected.kind === 'sent' ? row : { ...row, expected: { reason: /^twilio \d+: /, ...row.expected } },
  );
  answerTable(TWILIO, [...named, ...networkRows(SEND.url)]);
});

describe('twilio configuration', () => {
  it('names every missing credential', () => {
    expect(() => twilioConfigFromEnv({})).toThrow(MissingCredentialsError);
    expect(missingCredentials(() => twilioConfigFromEnv({ TWILIO_AUTH_TOKEN: ' ' })).variables).toEqual([
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
      'TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID',
    ]);
  });

  it('requires a sender', () => {
    expect(() => twilioConfigFromEnv({ TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN })).toThrow(
      /TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID/,
    );
  });
});
