import { describe, expect, it } from 'vitest';
import { buildPostmarkRequest, postmark, postmarkConfigFromEnv } from '../../../src/providers/email/postmark';
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
} from './helpers';

const TOKEN = 'server-token-00000000-1111-2222-3333-444444444444';
const env = { POSTMARK_SERVER_TOKEN: TOKEN, EMAIL_FROM: 'Herald <noreply@example.com>' };

const sentBody = {
  To: 'ada@example.org',
  SubmittedAt: '2025-03-04T05:06:07.0000000Z',
  MessageID: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817',
  ErrorCode: 0,
  Message: 'OK',
};

// Request shape per https://postmarkapp.com/developer/api/email-api
describe('postmark request', () => {
  it('posts the documented body with the server token header', async () => {
    const { fetch, calls } = scriptedFetch(json(200, sentBody));
    const result = await postmark.create(env, deps(fetch)).send(emailRequest());

    expect(result).toEqual({ kind: 'sent', providerMessageId: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817' });
    const [{ request, init }] = calls as [(typeof calls)[number]];
    expect(request.url).toBe('https://api.postmarkapp.com/email');
    expect(request.method).toBe('POST');
    expect(request.headers.get('x-postmark-server-token')).toBe(TOKEN);
    expect(request.headers.get('accept')).toBe('application/json');
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    expect(await request.json()).toEqual({
      From: 'Herald <noreply@example.com>',
      To: 'ada@example.org',
      Subject: 'Your invoice is paid',
      HtmlBody: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>',
      TextBody: 'Thanks, Ada. Invoice #42 is paid.',
      Headers: [
        {
          Name: 'List-Unsubscribe',
          Value: '<https://herald.test/u/tok_123>, <mailto:unsubscribe@example.com?subject=tok_123>',
        },
        { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
      ],
      MessageStream: 'outbound',
      Metadata: { delivery_id: DELIVERY_ID },
    });
  });

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
      TextBody: 'Thanks, Ada. Invoice #42 is paid.',
      ReplyTo: 'support@example.com',
      MessageStream: 'broadcast',
      Metadata: { delivery_id: DELIVERY_ID },
    });
  });
});

// Error codes per https://postmarkapp.com/developer/api/overview#error-codes
describe('postmark answers', () => {
  it('maps the HTTP statuses and API error codes to their classes', async () => {
    const apiError = (status: number, ErrorCode: number, Message: string) => () =>
      json(status, { ErrorCode, Message });
    await expectErrorTable(postmark, env, TOKEN, [
      {
        name: '401 / 10 bad token',
        response: apiError(401, 10, 'No Account or Server API tokens were supplied in the HTTP headers.'),
        expected: { kind: 'permanent', configError: true },
        code: '10',
      },
      {
        name: '422 / 10 bad token',
        response: apiError(422, 10, 'Bad or missing API token'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 300 invalid recipient',
        response: apiError(422, 300, "Error parsing 'To': Illegal email address 'ada@'."),
        expected: { kind: 'permanent', invalidAddress: true },
        code: '300',
      },
      {
        name: '422 / 300 invalid sender',
        response: apiError(422, 300, "Invalid 'From' address: 'noreply'."),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 300 other field',
        response: apiError(422, 300, 'Header "Date" is not allowed.'),
        expected: { kind: 'permanent' },
      },
      {
        name: '422 / 400 sender signature not found',
        response: apiError(
          422,
          400,
          'The From address you supplied is not a Sender Signature on your account.',
        ),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 401 sender signature not confirmed',
        response: apiError(422, 401, 'Sender signature not confirmed'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 402 invalid JSON',
        response: apiError(422, 402, 'Invalid JSON'),
        expected: { kind: 'permanent' },
      },
      {
        name: '422 / 405 not allowed to send',
        response: apiError(422, 405, 'Not allowed to send: you have run out of credits.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 406 inactive recipient',
        response: apiError(
          422,
          406,
          'You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ada@example.org.',
        ),
        expected: { kind: 'permanent', invalidAddress: true },
        code: '406',
      },
      {
        name: '422 / 412 account pending',
        response: apiError(422, 412, 'Account is pending approval.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '422 / 413 account may not send',
        response: apiError(422, 413, 'Account may not send.'),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '413 payload too large',
        response: () => new Response('Payload Too Large', { status: 413 }),
        expected: { kind: 'permanent' },
      },
      {
        name: '429 rate limit',
        response: apiError(429, 429, 'Rate limit exceeded'),
        expected: { kind: 'retryable' },
      },
      { name: '500', response: apiError(500, 0, 'Internal Server Error'), expected: { kind: 'retryable' } },
      {
        name: '503',
        response: () =>
          new Response('Service Unavailable', { status: 503, headers: { 'Retry-After': '60' } }),
        expected: { kind: 'retryable', retryAfterSeconds: 60 },
      },
    ]);
  });

  it('does not treat a 200 carrying an error code as sent', async () => {
    const { fetch } = scriptedFetch(json(200, { ErrorCode: 406, Message: 'Inactive recipient' }));
    const result = await postmark.create(env, deps(fetch)).send(emailRequest());
    expect(result).toMatchObject({ kind: 'permanent', invalidAddress: true });
  });

  it('treats network failures and timeouts as retryable', async () => {
    await expectNetworkFailuresRetryable(postmark, env);
  });

  it('refuses deliveries that cannot be emails without calling the API', async () => {
    await expectLocalRefusals(postmark, env);
  });

  it('names every missing variable', () => {
    expect(
      missingCredentials(() => postmarkConfigFromEnv({ EMAIL_FROM: 'noreply@example.com' })).variables,
    ).toEqual(['POSTMARK_SERVER_TOKEN']);
  });
});
