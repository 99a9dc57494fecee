import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { chatProviders } from '../../../src/providers/chat';
import { TELEGRAM_LIMITS, telegram, telegramConfigFromEnv } from '../../../src/providers/chat/telegram';
import { MissingCredentialsError } from '../../../src/providers/types';
import {
  type AnswerRow,
  answerTable,
  deliveryOf,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  jsonOf,
  jsonResponse,
  networkRows,
  onlyCall,
  type ProviderCase,
  refusalTable,
  sendOnce,
  textResponse,
} from '../harness';

const TOKEN = '123456:TEST-bot-token-value';
const ENV = { TELEGRAM_BOT_TOKEN: TOKEN };
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'telegram', chatId: '-1001234567890' };
const MESSAGE = { title: 'Order shipped', text: 'On its way', url: 'https://shop.example/o/1' };

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

// sendMessage: plain text (no parse_mode), the title heading it and the URL ending it, previews off.
// https://core.telegram.org/bots/api#sendmessage
const SEND: ExactRequest = {
  url: `https://api.telegram.org/bot${TOKEN}/sendMessage`,
  headers: { 'content-type': 'application/json' },
  body: {
    json: {
      chat_id: '-1001234567890',
      text: 'Order shipped\n\nOn its way\n\nhttps://shop.example/o/1',
      link_preview_options: { is_disabled: true },
    },
  },
};

const TELEGRAM: ProviderCase = {
  definition: telegram,
  env: () => ENV,
  request: () => deliveryOf(ADDRESS, MESSAGE),
  exact: () => [SEND],
  secrets: () => ['TEST-bot-token'],
};

describe('telegram request', () => {
  it('accepts a @channelusername and a base URL with a trailing slash', async () => {
    const env = { ...ENV, TELEGRAM_BASE_URL: 'http://localhost:8081/' };
    const { calls } = await sendOnce(
      telegram,
      env,
      deliveryOf({ ...ADDRESS, chatId: '@heraldnews' }, MESSAGE),
      ok(),
    );
    await expectRequest(onlyCall(calls), {
      ...SEND,
      url: `http://localhost:8081/bot${TOKEN}/sendMessage`,
      body: { json: { ...(SEND.body as { json: object }).json, chat_id: '@heraldnews' } },
    });
  });

  it('truncates text to 4096 UTF-16 units', async () => {
    const { calls } = await sendOnce(telegram, ENV, deliveryOf(ADDRESS, { text: 'y'.repeat(5000) }), ok());
    const { text } = jsonOf(onlyCall(calls)) as { text: string };
    expect(text).toBe(`${'y'.repeat(4095)}…`);
  });

  refusalTable(TELEGRAM, [
    {
      name: 'an address without chatId',
      request: () =>
        deliveryOf({ channel: 'chat', platform: 'telegram' } as AddressOf<'chat'>, { text: 'hi' }),
      expected: { kind: 'permanent', invalidAddress: true, reason: 'address has no telegram chatId' },
    },
  ]);

  it('declares its documented limits', () => {
    expect(telegram.limits).toBe(TELEGRAM_LIMITS);
    expect(TELEGRAM_LIMITS).toEqual({
      timeoutMs: 15_000,
      recipientsPerRequest: 1,
      documentedRatePerSecond: 30,
      fields: { text: 4096 },
    });
  });
});

const ANSWERS: AnswerRow[] = [
  { name: 'ok', reply: ok(), expected: { kind: 'sent', providerMessageId: '4242' } },
  {
    name: '403 blocked by the user',
    reply: failure(403, 'Forbidden: bot was blocked by the user'),
    expected: { kind: 'permanent', code: '403', invalidAddress: true },
  },
  {
    name: '403 user is deactivated',
    reply: failure(403, 'Forbidden: user is deactivated'),
    expected: { kind: 'permanent', code: '403', invalidAddress: true },
  },
  {
    name: '403 bot was kicked',
    reply: failure(403, 'Forbidden: bot was kicked from the supergroup chat'),
    expected: { kind: 'permanent', code: '403', invalidAddress: true },
  },
  {
    name: '403 cannot initiate',
    reply: failure(403, "Forbidden: bot can't initiate conversation with a user"),
    expected: { kind: 'permanent', code: '403', invalidAddress: true },
  },
  {
    name: '400 chat not found',
    reply: failure(400, 'Bad Request: chat not found'),
    expected: { kind: 'permanent', code: '400', invalidAddress: true },
  },
  {
    name: '400 upgraded to supergroup',
    reply: failure(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
      migrate_to_chat_id: -1009876543210,
    }),
    expected: { kind: 'permanent', code: '400', invalidAddress: true },
  },
  {
    name: '400 other',
    reply: failure(400, 'Bad Request: message text is empty'),
    expected: { kind: 'permanent', code: '400' },
  },
  {
    name: '401 unauthorized',
    reply: failure(401, 'Unauthorized'),
    expected: { kind: 'permanent', code: '401', configError: true },
  },
  {
    name: '404 not found (bad token format)',
    reply: failure(404, 'Not Found'),
    expected: { kind: 'permanent', code: '404', configError: true },
  },
  {
    name: '429 with retry_after',
    reply: failure(429, 'Too Many Requests: retry after 35', { retry_after: 35 }),
    expected: { kind: 'retryable', code: '429', retryAfterSeconds: 35 },
  },
  { name: '500', reply: failure(500, 'Internal Server Error'), expected: { kind: 'retryable', code: '500' } },
  {
    name: '502 non-JSON',
    reply: textResponse(502, '<html>Bad Gateway</html>'),
    expected: { kind: 'retryable', code: '502' },
  },
];

describe('telegram answers', () => {
  answerTable(TELEGRAM, [
    ...ANSWERS,
    {
      name: 'a description echoing the token is redacted',
      reply: failure(400, `Bad Request: url /bot${TOKEN}/sendMessage is odd`),
      expected: {
        kind: 'permanent',
        code: '400',
        reason: 'telegram 400 Bad Request: url /bot[redacted]/sendMessage is odd',
      },
    },
    ...networkRows(SEND.url),
    {
      name: 'a network error naming the bare token',
      reply: new Error(`invalid credentials ${TOKEN} rejected`),
      expected: { kind: 'unknown', reason: 'network error: invalid credentials [redacted] rejected' },
    },
  ]);

  it('reads retry_after from the answer, not from a Retry-After header', async () => {
    const reply = jsonResponse(
      429,
      { ok: false, error_code: 429, description: 'Too Many Requests' },
      { 'retry-after': '9' },
    );
    const { result } = await sendOnce(telegram, ENV, deliveryOf(ADDRESS, MESSAGE), reply);
    expectOutcome(result, { kind: 'retryable', code: '429', reason: 'telegram 429 Too Many Requests' });
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
