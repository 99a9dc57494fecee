import { describe, expect, it } from 'vitest';
import { buildSendgridRequest, sendgrid, sendgridConfigFromEnv } from '../../../src/providers/email/sendgrid';
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
  NOW_MS,
  scriptedFetch,
  UNSUBSCRIBE_HEADERS,
} from './helpers';

const API_KEY = 'SG.test-key.0123456789';
const env = { SENDGRID_API_KEY: API_KEY, EMAIL_FROM: 'Herald <noreply@example.com>' };

const accepted = () =>
  new Response(null, { status: 202, headers: { 'X-Message-Id': 'W3nR6hY0S0mR7dFq1p2x3A' } });

// Request shape per https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
describe('sendgrid request', () => {
  it('posts personalizations, from, ordered content, headers and custom_args', async () => {
    const { fetch, calls } = scriptedFetch(accepted());
    const result = await sendgrid.create(env, deps(fetch)).send(emailRequest());

    expect(result).toEqual({ kind: 'sent', providerMessageId: 'W3nR6hY0S0mR7dFq1p2x3A' });
    const [{ request, init }] = calls as [(typeof calls)[number]];
    expect(request.url).toBe('https://api.sendgrid.com/v3/mail/send');
    expect(request.method).toBe('POST');
    expect(request.headers.get('authorization')).toBe(`Bearer ${API_KEY}`);
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    const body = await request.json();
    expect(body).toEqual({
      personalizations: [{ to: [{ email: 'ada@example.org' }] }],
      from: { email: 'noreply@example.com', name: 'Herald' },
      subject: 'Your invoice is paid',
      content: [
        { type: 'text/plain', value: 'Thanks, Ada. Invoice #42 is paid.' },
        { type: 'text/html', value: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>' },
      ],
      headers: UNSUBSCRIBE_HEADERS,
      custom_args: { delivery_id: DELIVERY_ID },
    });
  });

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
      content: [{ type: 'text/html', value: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>' }],
      custom_args: { delivery_id: DELIVERY_ID },
    });
  });
});

// Status codes per https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors
describe('sendgrid answers', () => {
  it('maps every documented status to its class', async () => {
    const errors =
      (status: number, message: string, headers: Record<string, string> = {}) =>
      () =>
        json(status, { errors: [{ message, field: 'from.email', help: null }] }, headers);
    const resetAt = String(Math.floor(NOW_MS / 1000) + 30);
    await expectErrorTable(sendgrid, env, API_KEY, [
      {
        name: '400 bad request',
        response: errors(400, 'The from address does not contain a valid address.'),
        expected: { kind: 'permanent' },
        code: 'http_400',
      },
      {
        name: '401 unauthorized',
        response: errors(401, 'The provided authorization grant is invalid, expired, or revoked'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '403 forbidden',
        response: errors(403, 'The from address does not match a verified Sender Identity.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '413 payload too large',
        response: errors(413, 'The JSON payload you have included in your request is too large.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '429 with Retry-After',
        response: errors(429, 'too many requests', { 'Retry-After': '7' }),
        expected: { kind: 'retryable', retryAfterSeconds: 7 },
      },
      {
        name: '429 with X-RateLimit-Reset',
        response: errors(429, 'too many requests', { 'X-RateLimit-Reset': resetAt }),
        expected: { kind: 'retryable', retryAfterSeconds: 30 },
      },
      { name: '500', response: errors(500, 'internal error'), expected: { kind: 'retryable' } },
      {
        name: '503 without JSON',
        response: () => new Response('unavailable', { status: 503 }),
        expected: { kind: 'retryable' },
      },
    ]);
  });

  it('treats network failures and timeouts as retryable', async () => {
    await expectNetworkFailuresRetryable(sendgrid, env);
  });

  it('refuses deliveries that cannot be emails without calling the API', async () => {
    await expectLocalRefusals(sendgrid, env);
  });

  it('names every missing variable', () => {
    expect(() => sendgridConfigFromEnv({})).toThrowError(MissingCredentialsError);
    expect(() => sendgridConfigFromEnv({ EMAIL_FROM: 'a@example.com' })).toThrowError(/SENDGRID_API_KEY/);
    expect(missingCredentials(() => sendgridConfigFromEnv({})).variables).toEqual([
      'SENDGRID_API_KEY',
      'EMAIL_FROM',
    ]);
  });
});
