import { describe, expect, it } from 'vitest';
import { twilio, twilioConfigFromEnv } from '../../../src/providers/sms/twilio';
import { MissingCredentialsError } from '../../../src/providers/types';
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

const SID = 'ACtest0000000000000000000000000000';
const TOKEN = 'test-auth-token';
const ENV = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_FROM: '+15005550006' };
const REQUEST = sendRequest(
  { channel: 'sms', phone: '+447700900123' },
  { text: 'Your order shipped 📦 & is on its way' },
);

/** Twilio's documented success answer (abridged). */
const CREATED = { sid: 'SM1234567890abcdef1234567890abcdef', status: 'queued' };

async function sendWith(env: Record<string, string>, response: Response) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await twilio.create(env, depsWith(fetch)).send(REQUEST);
  return { result, calls };
}

describe('twilio request', () => {
  it('posts the form to the Messages resource with Basic auth', async () => {
    const { calls } = await sendWith(ENV, jsonResponse(201, CREATED));
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.request.url).toBe(`https://api.twilio.com/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(call?.request.method).toBe('POST');
    expect(call?.request.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    const auth = call?.request.headers.get('authorization') ?? '';
    expect(auth.startsWith('Basic ')).toBe(true);
    expect(atob(auth.slice('Basic '.length))).toBe(`${SID}:${TOKEN}`);
    const form = new URLSearchParams(call?.body);
    expect(Object.fromEntries(form)).toEqual({
      To: '+447700900123',
      From: '+15005550006',
      Body: 'Your order shipped 📦 & is on its way',
    });
  });

  it('uses the Messaging Service instead of From when configured, and sets StatusCallback', async () => {
    const env = {
      ...ENV,
      TWILIO_MESSAGING_SERVICE_SID: 'MGtest000000000000000000000000000',
      PUBLIC_BASE_URL: 'https://herald.example.com/',
      TWILIO_BASE_URL: 'http://localhost:9999/',
    };
    const { calls } = await sendWith(env, jsonResponse(201, CREATED));
    expect(calls[0]?.request.url).toBe(`http://localhost:9999/2010-04-01/Accounts/${SID}/Messages.json`);
    const form = new URLSearchParams(calls[0]?.body);
    expect(form.get('MessagingServiceSid')).toBe('MGtest000000000000000000000000000');
    expect(form.has('From')).toBe(false);
    // The delivery id rides in the (signed) callback URL, so status callbacks find their delivery.
    expect(form.get('StatusCallback')).toBe(
      'https://herald.example.com/v1/webhooks/twilio?deliveryId=dlv_01JTESTDELIVERY',
    );
  });

  it('omits StatusCallback without PUBLIC_BASE_URL', async () => {
    const { calls } = await sendWith(ENV, jsonResponse(201, CREATED));
    expect(new URLSearchParams(calls[0]?.body).has('StatusCallback')).toBe(false);
  });
});

const twilioError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
  jsonResponse(
    status,
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    headers,
  );

const ANSWERS: [string, () => Response, Outcome][] = [
  ['201 created', () => jsonResponse(201, CREATED), { kind: 'sent', providerMessageId: CREATED.sid }],
  [
    '21610 unsubscribed recipient',
    () => twilioError(400, 21610, 'Attempt to send to unsubscribed recipient'),
    { kind: 'permanent', code: '21610', optOut: true },
  ],
  [
    '21211 invalid To',
    () => twilioError(400, 21211, "The 'To' number +4477 is not a valid phone number."),
    { kind: 'permanent', code: '21211', invalidAddress: true },
  ],
  [
    '21614 not a mobile number',
    () => twilioError(400, 21614, "'To' number is not a valid mobile number"),
    { kind: 'permanent', code: '21614', invalidAddress: true },
  ],
  [
    '21635 landline',
    () => twilioError(400, 21635, "'To' number cannot be a landline"),
    { kind: 'permanent', code: '21635', invalidAddress: true },
  ],
  [
    '21612 unreachable combination',
    () => twilioError(400, 21612, "The 'To' phone number is not currently reachable"),
    { kind: 'permanent', code: '21612' },
  ],
  [
    '21408 region not enabled',
    () => twilioError(400, 21408, 'Permission to send an SMS has not been enabled for the region'),
    { kind: 'permanent', code: '21408', configError: true },
  ],
  [
    '21608 unverified on trial',
    () => twilioError(400, 21608, "The 'To' phone number provided is not yet verified"),
    { kind: 'permanent', code: '21608', configError: true },
  ],
  [
    '20003 authentication',
    () => twilioError(401, 20003, 'Authenticate'),
    { kind: 'permanent', code: '20003', configError: true },
  ],
  [
    '21606 bad From',
    () => twilioError(400, 21606, "The 'From' phone number provided is not a valid message-capable number"),
    { kind: 'permanent', code: '21606', configError: true },
  ],
  [
    '21659 From not a Twilio number',
    () => twilioError(400, 21659, "'From' is not a Twilio phone number"),
    { kind: 'permanent', code: '21659', configError: true },
  ],
  [
    '21617 body too long',
    () => twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit'),
    { kind: 'permanent', code: '21617' },
  ],
  [
    '20429 too many requests with Retry-After',
    () => twilioError(429, 20429, 'Too Many Requests', { 'retry-after': '7' }),
    { kind: 'retryable', code: '20429', retryAfterSeconds: 7 },
  ],
  [
    '21611 From queue full',
    () => twilioError(400, 21611, "This 'From' number has exceeded the maximum number of queued messages"),
    { kind: 'retryable', code: '21611' },
  ],
  [
    '503 without JSON',
    () => new Response('upstream down', { status: 503 }),
    { kind: 'retryable', code: '503' },
  ],
  [
    '500 with JSON error',
    () => twilioError(500, 20500, 'Internal Server Error'),
    { kind: 'retryable', code: '20500' },
  ],
  ['unknown 4xx code', () => twilioError(400, 21999, 'Something else'), { kind: 'permanent', code: '21999' }],
];

describe('twilio answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await sendWith(ENV, response());
    expectOutcome(result, expected);
    if (result.kind !== 'sent') {
      expect(result.reason).toMatch(/^twilio /);
      expect(result.reason).not.toContain(TOKEN);
    }
  });

  it.each([
    ['network error', new TypeError('Network connection lost.'), /network error/],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable', async (_name, error, reason) => {
    const result = await twilio.create(ENV, depsWith(failingFetch(error))).send(REQUEST);
    expect(result).toMatchObject({ kind: 'retryable', reason: expect.stringMatching(reason) });
  });
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
