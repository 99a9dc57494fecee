import { describe, expect, it } from 'vitest';
import { buildMailgunRequest, mailgun, mailgunConfigFromEnv } from '../../../src/providers/email/mailgun';
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

const API_KEY = 'key-test-0123456789abcdef';
const env = {
  MAILGUN_API_KEY: API_KEY,
  MAILGUN_DOMAIN: 'mg.example.com',
  EMAIL_FROM: 'Herald <noreply@example.com>',
};

/** Every field of a multipart form, in order. */
async function formFields(request: Request): Promise<[string, string][]> {
  const form = await request.formData();
  return [...form.entries()].map(([name, value]) => [name, String(value)]);
}

// Request shape per https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages
describe('mailgun request', () => {
  it('posts a multipart form with basic auth, h: headers and the v:delivery_id variable', async () => {
    const { fetch, calls } = scriptedFetch(
      json(200, { id: '<20250304050607.1.ABCDEF@mg.example.com>', message: 'Queued. Thank you.' }),
    );
    const result = await mailgun.create(env, deps(fetch)).send(emailRequest());

    expect(result).toEqual({ kind: 'sent', providerMessageId: '<20250304050607.1.ABCDEF@mg.example.com>' });
    const [{ request, init }] = calls as [(typeof calls)[number]];
    expect(request.url).toBe('https://api.mailgun.net/v3/mg.example.com/messages');
    expect(request.method).toBe('POST');
    expect(request.headers.get('authorization')).toBe(`Basic ${btoa(`api:${API_KEY}`)}`);
    expect(request.headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    expect(await formFields(request)).toEqual([
      ['from', 'Herald <noreply@example.com>'],
      ['to', 'ada@example.org'],
      ['subject', 'Your invoice is paid'],
      ['text', 'Thanks, Ada. Invoice #42 is paid.'],
      ['html', '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>'],
      ['h:List-Unsubscribe', UNSUBSCRIBE_HEADERS['List-Unsubscribe']],
      ['h:List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'],
      ['v:delivery_id', DELIVERY_ID],
    ]);
  });

  it('uses the EU base URL when configured and sends Reply-To as a header', async () => {
    const config = mailgunConfigFromEnv({
      ...env,
      MAILGUN_BASE_URL: 'https://api.eu.mailgun.net/',
      EMAIL_REPLY_TO: 'support@example.com',
    });
    const built = buildMailgunRequest(config, emailRequest({ html: undefined, headers: undefined }));
    expect(built.url).toBe('https://api.eu.mailgun.net/v3/mg.example.com/messages');
    expect(await formFields(built)).toEqual([
      ['from', 'Herald <noreply@example.com>'],
      ['to', 'ada@example.org'],
      ['subject', 'Your invoice is paid'],
      ['text', 'Thanks, Ada. Invoice #42 is paid.'],
      ['h:Reply-To', 'support@example.com'],
      ['v:delivery_id', DELIVERY_ID],
    ]);
  });
});

// Response codes per https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses
describe('mailgun answers', () => {
  it('maps every documented status to its class', async () => {
    const message =
      (status: number, text: string, headers: Record<string, string> = {}) =>
      () =>
        json(status, { message: text }, headers);
    await expectErrorTable(mailgun, env, API_KEY, [
      {
        name: '400',
        response: message(400, 'Need at least one of text or html'),
        expected: { kind: 'permanent' },
      },
      {
        name: '400 bad recipient',
        response: message(400, "'to' parameter is not a valid address. please check documentation"),
        expected: { kind: 'permanent', invalidAddress: true },
      },
      {
        name: '400 bad sender',
        response: message(400, "'from' parameter is not a valid address. please check documentation"),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '401 plain text',
        response: () => new Response('Forbidden', { status: 401 }),
        expected: { kind: 'permanent', configError: true },
        code: 'http_401',
      },
      {
        name: '403 sandbox',
        response: message(
          403,
          'Domain mg.example.com is not allowed to send: Free accounts are for test purposes only.',
        ),
        expected: { kind: 'permanent', configError: true },
      },
      {
        name: '404 domain',
        response: message(404, 'Domain not found: mg.example.com'),
        expected: { kind: 'permanent', configError: true },
      },
      { name: '413', response: message(413, 'request too large'), expected: { kind: 'permanent' } },
      {
        name: '429',
        response: message(429, 'Too many requests', { 'Retry-After': '9' }),
        expected: { kind: 'retryable', retryAfterSeconds: 9 },
      },
      { name: '500', response: message(500, 'Internal error'), expected: { kind: 'retryable' } },
      {
        name: '503 html',
        response: () => new Response('<html></html>', { status: 503 }),
        expected: { kind: 'retryable' },
      },
    ]);
  });

  it('treats network failures and timeouts as retryable', async () => {
    await expectNetworkFailuresRetryable(mailgun, env);
  });

  it('refuses deliveries that cannot be emails without calling the API', async () => {
    await expectLocalRefusals(mailgun, env);
  });

  it('names every missing variable', () => {
    expect(missingCredentials(() => mailgunConfigFromEnv({ MAILGUN_API_KEY: API_KEY })).variables).toEqual([
      'MAILGUN_DOMAIN',
      'EMAIL_FROM',
    ]);
  });
});
