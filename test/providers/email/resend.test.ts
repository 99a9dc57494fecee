import { describe, expect, it } from 'vitest';
import {
  buildResendRequest,
  RESEND_LIMITS,
  resend,
  resendConfigFromEnv,
} from '../../../src/providers/email/resend';
import { MissingCredentialsError } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  jsonResponse,
  networkRows,
  noNetwork,
  type ProviderCase,
  providerOn,
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

const API_KEY = 're_test_0123456789abcdef';
const env = { RESEND_API_KEY: API_KEY, EMAIL_FROM: 'Herald <noreply@example.com>' };

// Request shape per https://resend.com/docs/api-reference/emails/send-email
const SEND: ExactRequest = {
  url: 'https://api.resend.com/emails',
  headers: {
    authorization: `Bearer ${API_KEY}`,
    'content-type': 'application/json',
    'idempotency-key': DELIVERY_ID,
    'user-agent': 'herald/0.1',
  },
  body: {
    json: {
      from: 'Herald <noreply@example.com>',
      to: ['ada@example.org'],
      subject: 'Your invoice is paid',
      html: HTML,
      text: TEXT,
      headers: UNSUBSCRIBE_HEADERS,
      tags: [{ name: 'delivery_id', value: DELIVERY_ID }],
    },
  },
};

const RESEND: ProviderCase = {
  definition: resend,
  env: () => env,
  request: () => emailRequest(),
  exact: () => [SEND],
  secrets: () => [API_KEY],
  now: () => NOW_MS,
};

describe('resend request', () => {
  it('is idempotent: every attempt of a delivery carries its id as the Idempotency-Key', async () => {
    expect(resend.idempotent).toBe(true);
    const { provider, calls } = providerOn(resend, env, () => jsonResponse(200, { id: 're_1' }));
    expect(provider.idempotent).toBe(true);
    await provider.send(emailRequest());
    await provider.send(emailRequest());
    expect(calls.map((call) => call.request.headers.get('idempotency-key'))).toEqual([
      DELIVERY_ID,
      DELIVERY_ID,
    ]);
  });

  it('adds reply_to, leaves out absent parts and honours a base URL with a trailing slash', () => {
    const config = resendConfigFromEnv({
      ...env,
      EMAIL_REPLY_TO: 'support@example.com',
      RESEND_BASE_URL: 'http://localhost:8788/resend/',
    });
    const built = buildResendRequest(config, emailRequest({ html: undefined, headers: undefined }));
    expect(built.url).toBe('http://localhost:8788/resend/emails');
    expect(JSON.parse(built.body)).toEqual({
      from: 'Herald <noreply@example.com>',
      to: ['ada@example.org'],
      subject: 'Your invoice is paid',
      text: TEXT,
      reply_to: 'support@example.com',
      tags: [{ name: 'delivery_id', value: DELIVERY_ID }],
    });
  });

  it('quotes a display name with specials', () => {
    const config = resendConfigFromEnv({ ...env, EMAIL_FROM: '"Herald, Inc." <noreply@example.com>' });
    expect(JSON.parse(buildResendRequest(config, emailRequest()).body).from).toBe(
      '"Herald, Inc." <noreply@example.com>',
    );
  });

  it('declares its documented limits and reads its timeout from them', () => {
    expect(resend.limits).toBe(RESEND_LIMITS);
    expect(RESEND_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 40 * 1024 * 1024,
      recipientsPerRequest: 50,
      documentedRatePerSecond: 5,
    });
  });
});

const error = (status: number, name: string, message: string, headers: Record<string, string> = {}) =>
  jsonResponse(status, { statusCode: status, name, message }, headers);

// Error table per https://resend.com/docs/api-reference/errors
const ANSWERS: AnswerRow[] = [
  {
    name: '200 with the email id',
    reply: jsonResponse(200, { id: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' }),
    expected: { kind: 'sent', providerMessageId: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' },
  },
  {
    name: '400 validation_error',
    reply: error(400, 'validation_error', 'Invalid `to` field.'),
    expected: {
      kind: 'permanent',
      code: 'validation_error',
      reason: 'validation_error: Invalid `to` field.',
    },
  },
  {
    name: '400 invalid_idempotency_key',
    reply: error(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.'),
    expected: { kind: 'permanent', code: 'invalid_idempotency_key' },
  },
  {
    name: '400 invalid key',
    reply: error(400, 'validation_error', 'API key is invalid'),
    expected: { kind: 'permanent', code: 'validation_error', configError: true },
  },
  {
    name: '401 missing_api_key',
    reply: error(401, 'missing_api_key', 'Missing API key in the authorization header.'),
    expected: { kind: 'permanent', code: 'missing_api_key', configError: true },
  },
  {
    name: '401 restricted_api_key',
    reply: error(401, 'restricted_api_key', 'This API key is restricted to only send emails.'),
    expected: { kind: 'permanent', code: 'restricted_api_key', configError: true },
  },
  {
    name: '403 invalid_api_key',
    reply: error(403, 'invalid_api_key', 'API key is invalid.'),
    expected: { kind: 'permanent', code: 'invalid_api_key', configError: true },
  },
  {
    name: '403 testing restriction',
    reply: error(403, 'validation_error', 'You can only send testing emails to your own email address.'),
    expected: { kind: 'permanent', code: 'validation_error', configError: true },
  },
  {
    name: '403 unverified domain',
    reply: error(403, 'validation_error', 'The example.com domain is not verified.'),
    expected: { kind: 'permanent', code: 'validation_error', configError: true },
  },
  {
    name: '404 not_found',
    reply: error(404, 'not_found', 'The requested endpoint does not exist.'),
    expected: { kind: 'permanent', code: 'not_found', configError: true },
  },
  {
    name: '405 method_not_allowed',
    reply: error(405, 'method_not_allowed', 'Method is not allowed for the requested path.'),
    expected: { kind: 'permanent', code: 'method_not_allowed', configError: true },
  },
  {
    name: '409 invalid_idempotent_request',
    reply: error(409, 'invalid_idempotent_request', 'Same idempotency key used with a different payload.'),
    expected: { kind: 'permanent', code: 'invalid_idempotent_request' },
  },
  {
    name: '409 concurrent_idempotent_requests',
    reply: error(409, 'concurrent_idempotent_requests', 'Original request is still in progress.'),
    expected: { kind: 'retryable', code: 'concurrent_idempotent_requests' },
  },
  {
    name: '422 invalid_from_address',
    reply: error(422, 'invalid_from_address', 'Invalid `from` field.'),
    expected: { kind: 'permanent', code: 'invalid_from_address', configError: true },
  },
  {
    name: '422 invalid_parameter',
    reply: error(422, 'invalid_parameter', 'Invalid parameter.'),
    expected: { kind: 'permanent', code: 'invalid_parameter' },
  },
  {
    name: '422 missing_required_field',
    reply: error(422, 'missing_required_field', 'Missing `subject` field.'),
    expected: { kind: 'permanent', code: 'missing_required_field' },
  },
  {
    name: '429 rate_limit_exceeded',
    reply: error(429, 'rate_limit_exceeded', 'Too many requests.', { 'retry-after': '2' }),
    expected: { kind: 'retryable', code: 'rate_limit_exceeded', retryAfterSeconds: 2 },
  },
  {
    name: '429 daily_quota_exceeded',
    reply: error(429, 'daily_quota_exceeded', 'You have reached your daily quota.', {
      'retry-after': '3600',
    }),
    expected: { kind: 'retryable', code: 'daily_quota_exceeded', retryAfterSeconds: 3600 },
  },
  {
    name: '429 with only ratelimit-reset',
    reply: error(429, 'rate_limit_exceeded', 'Too many requests.', { 'ratelimit-reset': '5' }),
    expected: { kind: 'retryable', code: 'rate_limit_exceeded', retryAfterSeconds: 5 },
  },
  {
    name: '451 security_error',
    reply: error(451, 'security_error', 'We may have found a security issue with the request.'),
    expected: { kind: 'permanent', code: 'security_error' },
  },
  {
    name: '500 application_error',
    reply: error(500, 'application_error', 'An unexpected error occurred.'),
    expected: { kind: 'retryable', code: 'application_error' },
  },
  {
    name: '500 internal_server_error',
    reply: error(500, 'internal_server_error', 'An unexpected error occurred.'),
    expected: { kind: 'retryable', code: 'internal_server_error' },
  },
  {
    name: '502 without JSON',
    reply: textResponse(502, '<html>bad gateway</html>'),
    expected: { kind: 'retryable', reason: 'http 502: <html>bad gateway</html>' },
  },
  {
    name: '302 redirect is not followed',
    reply: textResponse(302, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', reason: 'http 302' },
  },
  ...networkRows(SEND.url),
];

describe('resend answers', () => {
  answerTable(RESEND, ANSWERS);
});

describe('resend refusals', () => {
  refusalTable(RESEND, EMAIL_REFUSALS);
});

describe('resend config', () => {
  it('names every missing variable', () => {
    expect(() => resend.create({}, noNetwork)).toThrowError(MissingCredentialsError);
    expect(missingCredentials(() => resendConfigFromEnv({ EMAIL_FROM: ' ' })).variables).toEqual([
      'RESEND_API_KEY',
      'EMAIL_FROM',
    ]);
  });

  it('rejects a malformed EMAIL_FROM', () => {
    expect(() => resendConfigFromEnv({ ...env, EMAIL_FROM: 'Herald noreply' })).toThrowError(/EMAIL_FROM/);
  });
});
