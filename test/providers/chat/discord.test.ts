import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { DISCORD_LIMITS, discord } from '../../../src/providers/chat/discord';
import {
  type AnswerRow,
  answerTable,
  deliveryOf,
  type ExactRequest,
  jsonOf,
  jsonResponse,
  networkRows,
  onlyCall,
  type ProviderCase,
  refusalTable,
  sendOnce,
  textResponse,
} from '../harness';

const HOOK = 'https://discord.com/api/webhooks/123456789012345678/test-webhook-token_abc';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'discord', url: HOOK };
const CREATED = { id: '1199999999999999999', type: 0, content: 'x', channel_id: '1' };

// Execute webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook
// `?wait=true` makes Discord confirm with the message; `allowed_mentions.parse = []` pings nobody.
const exactFor = (json: unknown): ExactRequest => ({
  url: `${HOOK}?wait=true`,
  headers: { 'content-type': 'application/json' },
  body: { json },
});

const DISCORD: ProviderCase = {
  definition: discord,
  env: () => ({}),
  request: () => deliveryOf(ADDRESS, { text: 'Hello @everyone <@&123>' }),
  exact: () => [exactFor({ content: 'Hello @everyone <@&123>', allowed_mentions: { parse: [] } })],
  secrets: () => ['test-webhook-token'],
};

/** The JSON Discord is sent for `message`. */
async function payloadOf(message: Parameters<typeof deliveryOf>[1]) {
  const { calls } = await sendOnce(discord, {}, deliveryOf(ADDRESS, message), jsonResponse(200, CREATED));
  return jsonOf(onlyCall(calls)) as { content: string; embeds?: unknown };
}

describe('discord request', () => {
  it('puts the title and link in an embed', async () => {
    expect(
      await payloadOf({ title: 'Order shipped', text: 'On its way', url: 'https://shop.example/o/1' }),
    ).toEqual({
      content: 'On its way',
      allowed_mentions: { parse: [] },
      embeds: [{ title: 'Order shipped', url: 'https://shop.example/o/1' }],
    });
  });

  it('appends the link to the content when there is no title', async () => {
    expect((await payloadOf({ text: 'See', url: 'https://shop.example/o/1' })).content).toBe(
      'See\nhttps://shop.example/o/1',
    );
  });

  it('truncates content to 2000 UTF-16 units without splitting a surrogate pair', async () => {
    const { content } = await payloadOf({ text: `${'a'.repeat(1998)}😀😀😀` });
    expect(content.length).toBeLessThanOrEqual(2000);
    expect(content.endsWith('…')).toBe(true);
    expect(content).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect((await payloadOf({ text: 'a'.repeat(2000) })).content).toBe('a'.repeat(2000));
  });

  it('truncates an embed title to 256 characters', async () => {
    const payload = await payloadOf({ title: 't'.repeat(300), text: 'x' });
    expect(payload.embeds).toEqual([{ title: `${'t'.repeat(255)}…` }]);
  });

  it('declares its documented limits', () => {
    expect(discord.limits).toBe(DISCORD_LIMITS);
    expect(DISCORD_LIMITS).toEqual({
      timeoutMs: 15_000,
      recipientsPerRequest: 1,
      fields: { content: 2000, embedTitle: 256 },
    });
  });
});

const ANSWERS: AnswerRow[] = [
  {
    name: '200 with message',
    reply: jsonResponse(200, CREATED),
    expected: { kind: 'sent', providerMessageId: CREATED.id },
  },
  { name: '204 no content', reply: textResponse(204, null), expected: { kind: 'sent' } },
  {
    name: '404 Unknown Webhook',
    reply: jsonResponse(404, { message: 'Unknown Webhook', code: 10015 }),
    expected: { kind: 'permanent', code: '10015', invalidAddress: true },
  },
  {
    name: '401 Invalid Webhook Token',
    reply: jsonResponse(401, { message: 'Invalid Webhook Token', code: 50027 }),
    expected: { kind: 'permanent', code: '50027', invalidAddress: true },
  },
  {
    name: '403 Missing Access',
    reply: jsonResponse(403, { message: 'Missing Access', code: 50001 }),
    expected: { kind: 'permanent', code: '50001', invalidAddress: true },
  },
  {
    name: '400 invalid form body',
    reply: jsonResponse(400, { message: 'Invalid Form Body', code: 50035 }),
    expected: { kind: 'permanent', code: '50035' },
  },
  {
    name: '429 with retry_after float',
    reply: jsonResponse(
      429,
      { message: 'You are being rate limited.', retry_after: 1.337, global: false },
      { 'retry-after': '1' },
    ),
    expected: { kind: 'retryable', code: '429', retryAfterSeconds: 2 },
  },
  {
    name: '429 with header only',
    reply: textResponse(429, '', { 'retry-after': '5' }),
    expected: { kind: 'retryable', code: '429', retryAfterSeconds: 5, reason: 'discord 429 (429)' },
  },
  { name: '500', reply: textResponse(500, ''), expected: { kind: 'retryable', code: '500' } },
  {
    name: '502 html',
    reply: textResponse(502, '<html>bad gateway</html>'),
    expected: { kind: 'retryable', code: '502' },
  },
];

describe('discord answers', () => {
  answerTable(DISCORD, [...ANSWERS, ...networkRows(`${HOOK}?wait=true`)]);
});

describe('discord address checks', () => {
  refusalTable(DISCORD, [
    {
      name: 'an internal webhook URL',
      request: () =>
        deliveryOf({ ...ADDRESS, url: 'https://169.254.169.254/api/webhooks/1/x' }, { text: 'x' }),
      expected: { kind: 'permanent', invalidAddress: true, reason: /^webhook url rejected: / },
    },
  ]);
});
