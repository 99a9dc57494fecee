import { describe, expect, it } from 'vitest';
import { buildResendRequest, resend, resendConfigFromEnv } from '../../../src/providers/email/resend';
import { MissingCredentialsError } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import {
  DELIVERY_ID,
  deps,
  emailRequest,
  expectErrorTable,
  expectLocalRefusals,
  expectNetworkFailuresRetryable,
  json,
  scriptedFetch,
  UNSUBSCRIBE_HEADERS,
} from './helpers';

const API_KEY = 're_test_0123456789abcdef';
const env = { RESEND_API_KEY: API_KEY, EMAIL_FROM: 'Herald <noreply@example.com>' };

// Request shape per https://resend.com/docs/api-reference/emails/send-email
describe('resend request', () => {
  it('posts the documented JSON body with bearer auth, idempotency key and user agent', async () => {
    const { fetch, calls } = scriptedFetch(json(200, { id: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' }));
    const result = await resend.create(env, deps(fetch)).send(emailRequest());

    expect(result).toEqual({ kind: 'sent', providerMessageId: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' });
    expect(calls).toHaveLength(1);
    const [{ request, init }] = calls as [(typeof calls)[number]];
    expect(request.url).toBe('https://api.resend.com/emails');
    expect(request.method).toBe('POST');
    expect(request.headers.get('authorization')).toBe(`Bearer ${API_KEY}`);
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(request.headers.get('idempotency-key')).toBe(DELIVERY_ID);
    expect(request.headers.get('user-agent')).toMatch(/^herald\//);
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    expect(await request.json()).toEqual({
      from: 'Herald <noreply@example.com>',
      to: ['ada@example.org'],
      subject: 'Your invoice is paid',
      html: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>',
      text: 'Thanks, Ada. Invoice #42 is paid.',
      headers: UNSUBSCRIBE_HEADERS,
      tags: [{ name: 'delivery_id', value: DELIVERY_ID }],
    });
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
      text: 'Thanks, Ada. Invoice #42 is paid.',
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
});

// Error table per https://resend.com/docs/api-reference/errors
describe('resend answers', () => {
  it('maps every documented error to its class', async () => {
    const error =
      (status: number, name: string, message: string, headers: Record<string, string> = {}) =>
      () =>
        json(status, { statusCode: status, name, message }, headers);
    await expectErrorTable(resend, env, API_KEY, [
      {
        name: '400 validation_error',
        response: error(400, 'validation_error', 'Invalid `to` field.'),
        expected: { kind: 'permanent' },
        code: 'validation_error',
      },
      {
        name: '400 invalid_idempotency_key',
        response: error(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '400 invalid key',
        response: error(400, 'validation_error', 'API key is invalid'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '401 missing_api_key',
        response: error(401, 'missing_api_key', 'Missing API key in the authorization header.'),
        expected: { kind: 'permanent', configError: true },
        code: 'missing_api_key',
      },
      {
        name: '401 restricted_api_key',
        response: error(401, 'restricted_api_key', 'This API key is restricted to only send emails.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '403 invalid_api_key',
        response: error(403, 'invalid_api_key', 'API key is invalid.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '403 testing restriction',
        response: error(
          403,
          'validation_error',
          'You can only send testing emails to your own email address.',
        ),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '403 unverified domain',
        response: error(403, 'validation_error', 'The example.com domain is not verified.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '404 not_found',
        response: error(404, 'not_found', 'The requested endpoint does not exist.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '409 invalid_idempotent_request',
        response: error(
          409,
          'invalid_idempotent_request',
          'Same idempotency key used with a different payload.',
        ),
        expected: { kind: 'permanent' },
      },
      {
        name: '409 concurrent_idempotent_requests',
        response: error(409, 'concurrent_idempotent_requests', 'Original request is still in progress.'),
        expected: { kind: 'retryable' },
      },
      {
        name: '422 invalid_from_address',
        response: error(422, 'invalid_from_address', 'Invalid `from` field.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 invalid_parameter',
        response: error(422, 'invalid_parameter', 'Invalid parameter.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '422 missing_required_field',
        response: error(422, 'missing_required_field', 'Missing `subject` field.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '429 rate_limit_exceeded',
        response: error(429, 'rate_limit_exceeded', 'Too many requests.', { 'retry-after': '2' }),
        expected: { kind: 'retryable', retryAfterSeconds: 2 },
        code: 'rate_limit_exceeded',
      },
      {
        name: '429 daily_quota_exceeded',
        response: error(429, 'daily_quota_exceeded', 'You have reached your daily quota.', {
          'retry-after': '3600',
        }),
        expected: { kind: 'retryable', retryAfterSeconds: 3600 },
      },
      {
        name: '429 with only ratelimit-reset',
        response: error(429, 'rate_limit_exceeded', 'Too many requests.', { 'ratelimit-reset': '5' }),
        expected: { kind: 'retryable', retryAfterSeconds: 5 },
      },
      {
        name: '451 security_error',
        response: error(451, 'security_error', 'We may have found a security issue with the request.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '500 application_error',
        response: error(500, 'application_error', 'An unexpected error occurred.'),
        expected: { kind: 'retryable' },
      },
      {
        name: '500 internal_server_error',
        response: error(500, 'internal_server_error', 'An unexpected error occurred.'),
        expected: { kind: 'retryable' },
      },
      {
        name: '502 without JSON',
        response: () => new Response('<html>bad gateway</html>', { status: 502 }),
        expected: { kind: 'retryable' },
      },
    ]);
  });

  it('treats network failures and timeouts as retryable', async () => {
    await expectNetworkFailuresRetryable(resend, env);
  });

  it('refuses deliveries that cannot be emails without calling the API', async () => {
    await expectLocalRefusals(resend, env);
  });
});

describe('resend config', () => {
  it('names every missing variable', () => {
    expect(() => resend.create({}, deps(scriptedFetch().fetch))).toThrowError(MissingCredentialsError);
    expect(missingCredentials(() => resendConfigFromEnv({ EMAIL_FROM: ' ' })).variables).toEqual([
      'RESEND_API_KEY',
      'EMAIL_FROM',
    ]);
  });

  it('rejects a malformed EMAIL_FROM', () => {
    expect(() => resendConfigFromEnv({ ...env, EMAIL_FROM: 'Herald noreply' })).toThrowError(/EMAIL_FROM/);
  });
});
