import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { chatProviders } from '../../../src/providers/chat';
import { telegram, telegramConfigFromEnv } from '../../../src/providers/chat/telegram';
import { MissingCredentialsError } from '../../../src/providers/types';
import {
  depsWith,
  expectOutcome,
  failingFetch,
  jsonResponse,
  type Outcome,
  recordingFetch,
  sendRequest,
  timeoutError,
} from './harness';

const TOKEN = '123456:TEST-bot-token-value';
const ENV = { TELEGRAM_BOT_TOKEN: TOKEN };
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'telegram', chatId: '-1001234567890' };

async function post(
  message: Parameters<typeof sendRequest>[1],
  response: Response = ok(),
  env: Record<string, string> = ENV,
  to = ADDRESS,
) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await telegram.create(env, depsWith(fetch)).send(sendRequest(to, message));
  return { result, calls, payload: calls[0] ? JSON.parse(calls[0].body) : undefined };
}

function ok(): Response {
  return jsonResponse(200, {
    ok: true,
    result: { message_id: 4242, chat: { id: -1001234567890 }, text: 'x' },
  });
}

function failure(status: number, description: string, parameters?: Record<string, number>): Response {
  return jsonResponse(status, {
    ok: false,
    error_code: status,
    description,
    ...(parameters ? { parameters } : {}),
  });
}

describe('telegram request', () => {
  it('calls sendMessage with chat_id, plain text and previews off', async () => {
    const { result, calls, payload } = await post({
      title: 'Order shipped',
      text: 'On its way',
      url: 'https://shop.example/o/1',
    });
    expectOutcome(result, { kind: 'sent', providerMessageId: '4242' });
    expect(calls[0]?.request.url).toBe(`https://api.telegram.org/bot${TOKEN}/sendMessage`);
    expect(calls[0]?.request.method).toBe('POST');
    expect(calls[0]?.request.headers.get('content-type')).toBe('application/json');
    expect(payload).toEqual({
      chat_id: '-1001234567890',
      text: 'Order shipped\n\nOn its way\n\nhttps://shop.example/o/1',
      link_preview_options: { is_disabled: true },
    });
  });

  it('accepts a @channelusername and a base URL with a trailing slash', async () => {
    const env = { ...ENV, TELEGRAM_BASE_URL: 'http://localhost:8081/' };
    const { calls, payload } = await post({ text: 'hi' }, ok(), env, { ...ADDRESS, chatId: '@heraldnews' });
    expect(calls[0]?.request.url).toBe(`http://localhost:8081/bot${TOKEN}/sendMessage`);
    expect(payload.chat_id).toBe('@heraldnews');
  });

  it('truncates text to 4096 UTF-16 units', async () => {
    const { payload } = await post({ text: 'y'.repeat(5000) });
    expect(payload.text.length).toBe(4096);
  });

  it('refuses an address without chatId', async () => {
    const { result, calls } = await post({ text: 'hi' }, ok(), ENV, {
      channel: 'chat',
      platform: 'telegram',
    });
    expect(calls).toHaveLength(0);
    expectOutcome(result, { kind: 'permanent', invalidAddress: true });
  });
});

const ANSWERS: [string, () => Response, Outcome][] = [
  ['ok', ok, { kind: 'sent', providerMessageId: '4242' }],
  [
    '403 blocked by the user',
    () => failure(403, 'Forbidden: bot was blocked by the user'),
    { kind: 'permanent', code: '403', invalidAddress: true },
  ],
  [
    '403 user is deactivated',
    () => failure(403, 'Forbidden: user is deactivated'),
    { kind: 'permanent', code: '403', invalidAddress: true },
  ],
  [
    '403 bot was kicked',
    () => failure(403, 'Forbidden: bot was kicked from the supergroup chat'),
    { kind: 'permanent', code: '403', invalidAddress: true },
  ],
  [
    '403 cannot initiate',
    () => failure(403, "Forbidden: bot can't initiate conversation with a user"),
    { kind: 'permanent', code: '403', invalidAddress: true },
  ],
  [
    '400 chat not found',
    () => failure(400, 'Bad Request: chat not found'),
    { kind: 'permanent', code: '400', invalidAddress: true },
  ],
  [
    '400 upgraded to supergroup',
    () =>
      failure(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
        migrate_to_chat_id: -1009876543210,
      }),
    { kind: 'permanent', code: '400', invalidAddress: true },
  ],
  ['400 other', () => failure(400, 'Bad Request: message text is empty'), { kind: 'permanent', code: '400' }],
  [
    '401 unauthorized',
    () => failure(401, 'Unauthorized'),
    { kind: 'permanent', code: '401', configError: true },
  ],
  [
    '404 not found (bad token format)',
    () => failure(404, 'Not Found'),
    { kind: 'permanent', code: '404', configError: true },
  ],
  [
    '429 with retry_after',
    () => failure(429, 'Too Many Requests: retry after 35', { retry_after: 35 }),
    { kind: 'retryable', code: '429', retryAfterSeconds: 35 },
  ],
  ['500', () => failure(500, 'Internal Server Error'), { kind: 'retryable', code: '500' }],
  [
    '502 non-JSON',
    () => new Response('<html>Bad Gateway</html>', { status: 502 }),
    { kind: 'retryable', code: '502' },
  ],
];

describe('telegram answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await post({ text: 'hi' }, response());
    expectOutcome(result, expected);
    expect(JSON.stringify(result)).not.toContain('TEST-bot-token');
  });

  it('redacts the token even if a description echoes it', async () => {
    const { result } = await post(
      { text: 'hi' },
      failure(400, `Bad Request: url /bot${TOKEN}/sendMessage is odd`),
    );
    expect(JSON.stringify(result)).not.toContain('TEST-bot-token');
  });

  it.each([
    [
      'network error naming the URL',
      new TypeError(`Fetch API cannot load: https://api.telegram.org/bot${TOKEN}/sendMessage`),
      /network error/,
    ],
    [
      'network error naming the bare token',
      new Error(`invalid credentials ${TOKEN} rejected`),
      /network error/,
    ],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable and never leaks the token', async (_name, error, reason) => {
    const result = await telegram
      .create(ENV, depsWith(failingFetch(error)))
      .send(sendRequest(ADDRESS, { text: 'x' }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(JSON.stringify(result)).not.toContain('TEST-bot-token');
  });
});

describe('telegram configuration', () => {
  it('requires TELEGRAM_BOT_TOKEN', () => {
    expect(() => telegramConfigFromEnv({})).toThrow(MissingCredentialsError);
    expect(() => telegramConfigFromEnv({ TELEGRAM_BOT_TOKEN: '' })).toThrow(/TELEGRAM_BOT_TOKEN/);
  });
});

describe('chat provider index', () => {
  it('lists one definition per platform', () => {
    expect(
      chatProviders.map((definition) => [definition.name, definition.channel, definition.platforms]),
    ).toEqual([
      ['slack', 'chat', ['slack']],
      ['discord', 'chat', ['discord']],
      ['teams', 'chat', ['teams']],
      ['telegram', 'chat', ['telegram']],
    ]);
  });
});
