import { describe, expect, it } from 'vitest';
import {
  buildMailgunRequest,
  MAILGUN_LIMITS,
  mailgun,
  mailgunConfigFromEnv,
} from '../../../src/providers/email/mailgun';
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

const API_KEY = 'key-test-0123456789abcdef';
const env = {
  MAILGUN_API_KEY: API_KEY,
  MAILGUN_DOMAIN: 'mg.example.com',
  EMAIL_FROM: 'Herald <noreply@example.com>',
};

// Request shape per https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages
const SEND: ExactRequest = {
  url: 'https://api.mailgun.net/v3/mg.example.com/messages',
  headers: {
    authorization: `Basic ${btoa(`api:${API_KEY}`)}`,
    'content-type': /^multipart\/form-data; boundary=\S+$/,
    'user-agent': 'herald/0.1',
  },
  body: {
    multipart: [
      ['from', 'Herald <noreply@example.com>'],
      ['to', 'ada@example.org'],
      ['subject', 'Your invoice is paid'],
      ['text', TEXT],
      ['html', HTML],
      ['h:List-Unsubscribe', UNSUBSCRIBE_HEADERS['List-Unsubscribe']],
      ['h:List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'],
      ['v:delivery_id', DELIVERY_ID],
    ],
  },
};

const MAILGUN: ProviderCase = {
  definition: mailgun,
  env: () => env,
  request: () => emailRequest(),
  exact: () => [SEND],
  secrets: () => [API_KEY],
  now: () => NOW_MS,
};

describe('mailgun request', () => {
  it('uses the EU base URL when configured and sends Reply-To as a header', async () => {
    const config = mailgunConfigFromEnv({
      ...env,
      MAILGUN_BASE_URL: 'https://api.eu.mailgun.net/',
      EMAIL_REPLY_TO: 'support@example.com',
    });
    const built = buildMailgunRequest(config, emailRequest({ html: undefined, headers: undefined }));
    expect(built.url).toBe('https://api.eu.mailgun.net/v3/mg.example.com/messages');
    const form = await built.formData();
    expect([...form.entries()].map(([name, value]) => [name, String(value)])).toEqual([
      ['from', 'Herald <noreply@example.com>'],
      ['to', 'ada@example.org'],
      ['subject', 'Your invoice is paid'],
      ['text', TEXT],
      ['h:Reply-To', 'support@example.com'],
      ['v:delivery_id', DELIVERY_ID],
    ]);
  });

  it('declares its documented limits', () => {
    expect(mailgun.limits).toBe(MAILGUN_LIMITS);
    expect(MAILGUN_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 25 * 1024 * 1024,
      recipientsPerRequest: 1000,
    });
  });
});

const message = (status: number, text: string, headers: Record<string, string> = {}) =>
  jsonResponse(status, { message: text }, headers);

// Response codes per https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses
const ANSWERS: AnswerRow[] = [
  {
    name: '200 queued',
    reply: jsonResponse(200, {
      id: '<20250304050607.1.ABCDEF@mg.example.com>',
      message: 'Queued. Thank you.',
    }),
    expected: { kind: 'sent', providerMessageId: '<20250304050607.1.ABCDEF@mg.example.com>' },
  },
  {
    name: '400',
    reply: message(400, 'Need at least one of text or html'),
    expected: {
      kind: 'permanent',
      code: 'http_400',
      reason: 'mailgun 400: Need at least one of text or html',
    },
  },
  {
    name: '400 bad recipient',
    reply: message(400, "'to' parameter is not a valid address. please check documentation"),
    expected: { kind: 'permanent', code: 'http_400', invalidAddress: true },
  },
  {
    name: '400 bad sender',
    reply: message(400, "'from' parameter is not a valid address. please check documentation"),
    expected: { kind: 'permanent', code: 'http_400', configError: true },
  },
  {
    name: '401 plain text',
    reply: textResponse(401, 'Forbidden'),
    expected: { kind: 'permanent', code: 'http_401', configError: true, reason: 'mailgun 401: Forbidden' },
  },
  {
    name: '403 sandbox',
    reply: message(
      403,
      'Domain mg.example.com is not allowed to send: Free accounts are for test purposes only.',
    ),
    expected: { kind: 'permanent', code: 'http_403', configError: true },
  },
  {
    name: '404 domain',
    reply: message(404, 'Domain not found: mg.example.com'),
    expected: { kind: 'permanent', code: 'http_404', configError: true },
  },
  {
    name: '413',
    reply: message(413, 'request too large'),
    expected: { kind: 'permanent', code: 'http_413' },
  },
  {
    name: '429',
    reply: message(429, 'Too many requests', { 'Retry-After': '9' }),
    expected: { kind: 'retryable', code: 'http_429', retryAfterSeconds: 9 },
  },
  { name: '500', reply: message(500, 'Internal error'), expected: { kind: 'retryable', code: 'http_500' } },
  {
    name: '503 html',
    reply: textResponse(503, '<html></html>'),
    expected: { kind: 'retryable', code: 'http_503' },
  },
  {
    name: '302 redirect is not followed',
    reply: textResponse(302, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', code: 'http_302' },
  },
  ...networkRows(SEND.url),
];

describe('mailgun answers', () => {
  answerTable(MAILGUN, ANSWERS);
});

describe('mailgun refusals', () => {
  refusalTable(MAILGUN, EMAIL_REFUSALS);
});

describe('mailgun config', () => {
  it('names every missing variable', () => {
    expect(missingCredentials(() => mailgunConfigFromEnv({ MAILGUN_API_KEY: API_KEY })).variables).toEqual([
      'MAILGUN_DOMAIN',
      'EMAIL_FROM',
    ]);
  });
});
