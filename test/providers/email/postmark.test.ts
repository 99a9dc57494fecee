import { describe, expect, it } from 'vitest';
import {
  buildPostmarkRequest,
  POSTMARK_LIMITS,
  postmark,
  postmarkConfigFromEnv,
} from '../../../src/providers/email/postmark';
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
import { DELIVERY_ID, EMAIL_REFUSALS, emailRequest, HTML, NOW_MS, TEXT } from './fixtures';

const TOKEN = 'server-token-00000000-1111-2222-3333-444444444444';
const env = { POSTMARK_SERVER_TOKEN: TOKEN, EMAIL_FROM: 'Herald <noreply@example.com>' };

// Request shape per https://postmarkapp.com/developer/api/email-api
const SEND: ExactRequest = {
  url: 'https://api.postmarkapp.com/email',
  headers: {
    accept: 'application/json',
    'content-type': 'application/json',
    'x-postmark-server-token': TOKEN,
    'user-agent': 'herald/0.1',
  },
  body: {
    json: {
      From: 'Herald <noreply@example.com>',
      To: 'ada@example.org',
      Subject: 'Your invoice is paid',
      HtmlBody: HTML,
      TextBody: TEXT,
      Headers: [
        {
          Name: 'List-Unsubscribe',
          Value: '<https://herald.test/u/tok_123>, <mailto:unsubscribe@example.com?subject=tok_123>',
        },
        { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
      ],
      MessageStream: 'outbound',
      Metadata: { delivery_id: DELIVERY_ID },
    },
  },
};

const POSTMARK: ProviderCase = {
  definition: postmark,
  env: () => env,
  request: () => emailRequest(),
  exact: () => [SEND],
  secrets: () => [TOKEN],
  now: () => NOW_MS,
};

describe('postmark request', () => {
  it('uses the configured message stream, reply-to and base URL', () => {
    const config = postmarkConfigFromEnv({
      ...env,
      POSTMARK_MESSAGE_STREAM: 'broadcast',
      POSTMARK_BASE_URL: 'http://localhost:9000/',
      EMAIL_REPLY_TO: 'support@example.com',
    });
    const built = buildPostmarkRequest(config, emailRequest({ html: undefined, headers: undefined }));
    expect(built.url).toBe('http://localhost:9000/email');
    expect(JSON.parse(built.body)).toEqual({
      From: 'Herald <noreply@example.com>',
      To: 'ada@example.org',
      Subject: 'Your invoice is paid',
      TextBody: TEXT,
      ReplyTo: 'support@example.com',
      MessageStream: 'broadcast',
      Metadata: { delivery_id: DELIVERY_ID },
    });
  });

  it('declares its documented limits', () => {
    expect(postmark.limits).toBe(POSTMARK_LIMITS);
    expect(POSTMARK_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 10 * 1024 * 1024,
      recipientsPerRequest: 50,
    });
  });
});

const apiError = (status: number, ErrorCode: number, Message: string) =>
  jsonResponse(status, { ErrorCode, Message });

// Error codes per https://postmarkapp.com/developer/api/overview#error-codes
const ANSWERS: AnswerRow[] = [
  {
    name: '200 with ErrorCode 0',
    reply: jsonResponse(200, {
      To: 'ada@example.org',
      SubmittedAt: '2025-03-04T05:06:07.0000000Z',
      MessageID: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817',
      ErrorCode: 0,
      Message: 'OK',
    }),
    expected: { kind: 'sent', providerMessageId: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817' },
  },
  {
    name: '200 carrying an error code is not sent',
    reply: jsonResponse(200, { ErrorCode: 406, Message: 'Inactive recipient' }),
    expected: { kind: 'permanent', code: '406', invalidAddress: true },
  },
  {
    name: '401 / 10 bad token',
    reply: apiError(401, 10, 'No Account or Server API tokens were supplied in the HTTP headers.'),
    expected: { kind: 'permanent', code: '10', configError: true },
  },
  {
    name: '422 / 10 bad token',
    reply: apiError(422, 10, 'Bad or missing API token'),
    expected: {
      kind: 'permanent',
      code: '10',
      configError: true,
      reason: 'postmark 10: Bad or missing API token',
    },
  },
  {
    name: '422 / 300 invalid recipient',
    reply: apiError(422, 300, "Error parsing 'To': Illegal email address 'ada@'."),
    expected: { kind: 'permanent', code: '300', invalidAddress: true },
  },
  {
    name: '422 / 300 invalid sender',
    reply: apiError(422, 300, "Invalid 'From' address: 'noreply'."),
    expected: { kind: 'permanent', code: '300', configError: true },
  },
  {
    name: '422 / 300 other field',
    reply: apiError(422, 300, 'Header "Date" is not allowed.'),
    expected: { kind: 'permanent', code: '300' },
  },
  {
    name: '422 / 400 sender signature not found',
    reply: apiError(422, 400, 'The From address you supplied is not a Sender Signature on your account.'),
    expected: { kind: 'permanent', code: '400', configError: true },
  },
  {
    name: '422 / 401 sender signature not confirmed',
    reply: apiError(422, 401, 'Sender signature not confirmed'),
    expected: { kind: 'permanent', code: '401', configError: true },
  },
  {
    name: '422 / 402 invalid JSON',
    reply: apiError(422, 402, 'Invalid JSON'),
    expected: { kind: 'permanent', code: '402' },
  },
  {
    name: '422 / 405 not allowed to send',
    reply: apiError(422, 405, 'Not allowed to send: you have run out of credits.'),
    expected: { kind: 'permanent', code: '405', configError: true },
  },
  {
    name: '422 / 406 inactive recipient',
    reply: apiError(
      422,
      406,
      'You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ada@example.org.',
    ),
    expected: { kind: 'permanent', code: '406', invalidAddress: true },
  },
  {
    name: '422 / 412 account pending',
    reply: apiError(422, 412, 'Account is pending approval.'),
    expected: { kind: 'permanent', code: '412', configError: true },
  },
  {
    name: '422 / 413 account may not send',
    reply: apiError(422, 413, 'Account may not send.'),
    expected: { kind: 'permanent', code: '413', configError: true },
  },
  {
    name: '422 / 100 maintenance',
    reply: apiError(422, 100, 'Maintenance'),
    expected: { kind: 'retryable', code: '100' },
  },
  {
    name: '403 without an error code',
    reply: textResponse(403, 'Forbidden'),
    expected: { kind: 'permanent', code: 'http_403' },
  },
  {
    name: '404 wrong base URL',
    reply: textResponse(404, 'Not Found'),
    expected: { kind: 'permanent', code: 'http_404', configError: true },
  },
  {
    name: '413 payload too large',
    reply: textResponse(413, 'Payload Too Large'),
    expected: { kind: 'permanent', code: 'http_413', reason: 'postmark 413: Payload Too Large' },
  },
  {
    name: '429 rate limit',
    reply: apiError(429, 429, 'Rate limit exceeded'),
    expected: { kind: 'retryable', code: '429' },
  },
  {
    name: '500',
    reply: apiError(500, 0, 'Internal Server Error'),
    expected: { kind: 'retryable', code: '0' },
  },
  {
    name: '503',
    reply: textResponse(503, 'Service Unavailable', { 'Retry-After': '60' }),
    expected: { kind: 'retryable', code: 'http_503', retryAfterSeconds: 60 },
  },
  {
    name: '302 redirect is not followed',
    reply: textResponse(302, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', code: 'http_302' },
  },
  ...networkRows(SEND.url),
];

describe('postmark answers', () => {
  answerTable(POSTMARK, ANSWERS);
});

describe('postmark refusals', () => {
  refusalTable(POSTMARK, EMAIL_REFUSALS);
});

describe('postmark config', () => {
  it('names every missing variable', () => {
    expect(
      missingCredentials(() => postmarkConfigFromEnv({ EMAIL_FROM: 'noreply@example.com' })).variables,
    ).toEqual(['POSTMARK_SERVER_TOKEN']);
  });
});
