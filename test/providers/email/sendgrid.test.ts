import { describe, expect, it } from 'vitest';
import {
  buildSendgridRequest,
  SENDGRID_LIMITS,
  sendgrid,
  sendgridConfigFromEnv,
} from '../../../src/providers/email/sendgrid';
import { MissingCredentialsError } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  jsonResponse,
  networkRows,
  type ProviderCase,
  refusalTable,
  textResponse,
} from '../harness';
import {
  DELIVERY_ID,
  EMAIL_REFUSALS,
  emailRequest,
  HTML,
  NOW_MS,
  TEXT,
  UNSUBSCRIBE_HEADERS,
} from './fixtures';

const API_KEY = 'SG.test-key.0123456789';
const env = { SENDGRID_API_KEY: API_KEY, EMAIL_FROM: 'Herald <noreply@example.com>' };

// Request shape per https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
const SEND: ExactRequest = {
  url: 'https://api.sendgrid.com/v3/mail/send',
  headers: {
    authorization: `Bearer ${API_KEY}`,
    'content-type': 'application/json',
    'user-agent': 'herald/0.1',
  },
  body: {
    json: {
      personalizations: [{ to: [{ email: 'ada@example.org' }] }],
      from: { email: 'noreply@example.com', name: 'Herald' },
      subject: 'Your invoice is paid',
      content: [
        { type: 'text/plain', value: TEXT },
        { type: 'text/html', value: HTML },
      ],
      headers: UNSUBSCRIBE_HEADERS,
      custom_args: { delivery_id: DELIVERY_ID },
    },
  },
};

const SENDGRID: ProviderCase = {
  definition: sendgrid,
  env: () => env,
  request: () => emailRequest(),
  exact: () => [SEND],
  secrets: () => [API_KEY],
  now: () => NOW_MS,
};

describe('sendgrid request', () => {
  it('adds reply_to, sends html alone, omits empty headers and honours the base URL', () => {
    const config = sendgridConfigFromEnv({
      SENDGRID_API_KEY: API_KEY,
      EMAIL_FROM: 'noreply@example.com',
      EMAIL_REPLY_TO: 'Support <support@example.com>',
      SENDGRID_BASE_URL: 'https://api.eu.sendgrid.com/',
    });
    const built = buildSendgridRequest(config, emailRequest({ text: undefined, headers: {} }));
    expect(built.url).toBe('https://api.eu.sendgrid.com/v3/mail/send');
    expect(JSON.parse(built.body)).toEqual({
      personalizations: [{ to: [{ email: 'ada@example.org' }] }],
      from: { email: 'noreply@example.com' },
      reply_to: { email: 'support@example.com', name: 'Support' },
      subject: 'Your invoice is paid',
      content: [{ type: 'text/html', value: HTML }],
      custom_args: { delivery_id: DELIVERY_ID },
    });
  });

  it('declares its documented limits', () => {
    expect(sendgrid.limits).toBe(SENDGRID_LIMITS);
    expect(SENDGRID_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 30 * 1024 * 1024,
      recipientsPerRequest: 1000,
    });
  });
});

const errors = (status: number, message: string, headers: Record<string, string> = {}) =>
  jsonResponse(status, { errors: [{ message, field: 'from.email', help: null }] }, headers);
const resetAt = String(Math.floor(NOW_MS / 1000) + 30);

// Status codes per https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors
const ANSWERS: AnswerRow[] = [
  {
    name: '202 accepted',
    reply: textResponse(202, null, { 'X-Message-Id': 'W3nR6hY0S0mR7dFq1p2x3A' }),
    expected: { kind: 'sent', providerMessageId: 'W3nR6hY0S0mR7dFq1p2x3A' },
  },
  {
    name: '400 bad request',
    reply: errors(400, 'The from address does not contain a valid address.'),
    expected: {
      kind: 'permanent',
      code: 'http_400',
      reason: 'sendgrid 400: from.email: The from address does not contain a valid address.',
    },
  },
  {
    name: '401 unauthorized',
    reply: errors(401, 'The provided authorization grant is invalid, expired, or revoked'),
    expected: { kind: 'permanent', code: 'http_401', configError: true },
  },
  {
    name: '403 forbidden',
    reply: errors(403, 'The from address does not match a verified Sender Identity.'),
    expected: { kind: 'permanent', code: 'http_403', configError: true },
  },
  {
    name: '404 wrong base URL',
    reply: textResponse(404, 'Not Found'),
    expected: { kind: 'permanent', code: 'http_404', configError: true },
  },
  {
    name: '413 payload too large',
    reply: errors(413, 'The JSON payload you have included in your request is too large.'),
    expected: { kind: 'permanent', code: 'http_413' },
  },
  {
    name: '429 with Retry-After',
    reply: errors(429, 'too many requests', { 'Retry-After': '7' }),
    expected: { kind: 'retryable', code: 'http_429', retryAfterSeconds: 7 },
  },
  {
    name: '429 with X-RateLimit-Reset',
    reply: errors(429, 'too many requests', { 'X-RateLimit-Reset': resetAt }),
    expected: { kind: 'retryable', code: 'http_429', retryAfterSeconds: 30 },
  },
  { name: '500', reply: errors(500, 'internal error'), expected: { kind: 'retryable', code: 'http_500' } },
  {
    name: '503 without JSON',
    reply: textResponse(503, 'unavailable'),
    expected: { kind: 'retryable', code: 'http_503', reason: 'sendgrid 503: unavailable' },
  },
  {
    name: '307 redirect is not followed',
    reply: textResponse(307, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', code: 'http_307' },
  },
  ...networkRows(SEND.url),
];

describe('sendgrid answers', () => {
  answerTable(SENDGRID, ANSWERS);
});

describe('sendgrid refusals', () => {
  refusalTable(SENDGRID, EMAIL_REFUSALS);
});

describe('sendgrid config', () => {
  it('names every missing variable', () => {
    expect(() => sendgridConfigFromEnv({})).toThrowError(MissingCredentialsError);
    expect(() => sendgridConfigFromEnv({ EMAIL_FROM: 'a@example.com' })).toThrowError(/SENDGRID_API_KEY/);
    expect(missingCredentials(() => sendgridConfigFromEnv({})).variables).toEqual([
      'SENDGRID_API_KEY',
      'EMAIL_FROM',
    ]);
  });
});
