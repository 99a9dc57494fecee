import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { SLACK_LIMITS, slack } from '../../../src/providers/chat/slack';
import {
  type AnswerRow,
  answerTable,
  deliveryOf,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  jsonOf,
  networkRows,
  onlyCall,
  type ProviderCase,
  refusalTable,
  sendOnce,
  textResponse,
} from '../harness';

const HOOK = 'https://hooks.slack.com/services/T00000000/B00000000/testtesttesttesttesttest';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'slack', url: HOOK };

// Incoming webhooks: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
const exactFor = (json: unknown): ExactRequest => ({
  url: HOOK,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: { json },
});

const SLACK: ProviderCase = {
  definition: slack,
  env: () => ({}),
  request: () => deliveryOf(ADDRESS, { text: 'hi' }),
  exact: () => [exactFor({ text: 'hi' })],
  secrets: () => [HOOK, 'testtesttest'],
};

/** The JSON Slack is sent for `message`. */
async function payloadOf(message: Parameters<typeof deliveryOf>[1]) {
  return jsonOf(
    onlyCall((await sendOnce(slack, {}, deliveryOf(ADDRESS, message), textResponse(200, 'ok'))).calls),
  );
}

describe('slack request', () => {
  it('posts text only when there is no title', async () => {
    const { result, calls } = await sendOnce(
      slack,
      {},
      deliveryOf(ADDRESS, { text: 'Deploy finished' }),
      textResponse(200, 'ok'),
    );
    expectOutcome(result, { kind: 'sent' });
    await expectRequest(onlyCall(calls), exactFor({ text: 'Deploy finished' }));
  });

  it('adds one mrkdwn section with the bold title, and the link', async () => {
    const payload = await payloadOf({
      title: 'Order shipped',
      text: 'Order #42 left the warehouse',
      url: 'https://shop.example/o/42',
    });
    expect(payload).toEqual({
      text: 'Order #42 left the warehouse\n<https://shop.example/o/42>',
      blocks: [
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: '*Order shipped*\nOrder #42 left the warehouse\n<https://shop.example/o/42>',
          },
        },
      ],
    });
  });

  it('keeps a section block within 3000 characters', async () => {
    const payload = (await payloadOf({ title: 'Long', text: 'x'.repeat(5000) })) as {
      blocks: { text: { text: string } }[];
    };
    const section = payload.blocks[0]?.text.text ?? '';
    expect(section.length).toBe(3000);
    expect(section.endsWith('…')).toBe(true);
  });

  it('declares its documented limits', () => {
    expect(slack.limits).toBe(SLACK_LIMITS);
    expect(SLACK_LIMITS).toEqual({
      timeoutMs: 15_000,
      recipientsPerRequest: 1,
      documentedRatePerSecond: 1,
      fields: { text: 40_000, sectionText: 3000 },
      answerChars: 1024,
    });
  });
});

/** Plain-text error strings Slack documents for incoming webhooks. */
const ANSWERS: AnswerRow[] = [
  { name: '200 ok', reply: textResponse(200, 'ok'), expected: { kind: 'sent' } },
  {
    name: '400 invalid_payload',
    reply: textResponse(400, 'invalid_payload'),
    expected: { kind: 'permanent', code: 'invalid_payload' },
  },
  {
    name: '400 user_not_found',
    reply: textResponse(400, 'user_not_found'),
    expected: { kind: 'permanent', code: 'user_not_found' },
  },
  {
    name: '400 no_service_id',
    reply: textResponse(400, 'no_service_id'),
    expected: { kind: 'permanent', code: 'no_service_id', invalidAddress: true },
  },
  {
    name: '403 action_prohibited',
    reply: textResponse(403, 'action_prohibited'),
    expected: { kind: 'permanent', code: 'action_prohibited' },
  },
  {
    name: '403 invalid_token',
    reply: textResponse(403, 'invalid_token'),
    expected: { kind: 'permanent', code: 'invalid_token', invalidAddress: true },
  },
  {
    name: '404 no_service',
    reply: textResponse(404, 'no_service'),
    expected: { kind: 'permanent', code: 'no_service', invalidAddress: true },
  },
  {
    name: '404 no_team',
    reply: textResponse(404, 'no_team'),
    expected: { kind: 'permanent', code: 'no_team', invalidAddress: true },
  },
  {
    name: '404 team_disabled',
    reply: textResponse(404, 'team_disabled'),
    expected: { kind: 'permanent', code: 'team_disabled', invalidAddress: true },
  },
  {
    name: '404 channel_not_found',
    reply: textResponse(404, 'channel_not_found'),
    expected: { kind: 'permanent', code: 'channel_not_found', invalidAddress: true },
  },
  {
    name: '410 channel_is_archived',
    reply: textResponse(410, 'channel_is_archived'),
    expected: { kind: 'permanent', code: 'channel_is_archived', invalidAddress: true },
  },
  {
    name: '404 with an empty body',
    reply: textResponse(404, ''),
    expected: { kind: 'permanent', code: '404', invalidAddress: true },
  },
  {
    name: '429 rate limited',
    reply: textResponse(429, 'rate_limited', { 'retry-after': '30' }),
    expected: {
      kind: 'retryable',
      code: 'rate_limited',
      retryAfterSeconds: 30,
      reason: 'slack 429 rate_limited',
    },
  },
  {
    name: '500 rollup_error',
    reply: textResponse(500, 'rollup_error'),
    expected: { kind: 'retryable', code: 'rollup_error' },
  },
  { name: '502 without body', reply: textResponse(502, ''), expected: { kind: 'retryable', code: '502' } },
  {
    name: '302 redirect is not followed',
    reply: textResponse(302, null, { location: 'https://x.example' }),
    expected: { kind: 'permanent', code: '302' },
  },
];

describe('slack answers', () => {
  answerTable(SLACK, [...ANSWERS, ...networkRows(HOOK)]);
});

describe('slack address checks', () => {
  refusalTable(SLACK, [
    {
      name: 'an address without url',
      request: () => deliveryOf({ channel: 'chat', platform: 'slack' } as AddressOf<'chat'>, { text: 'hi' }),
      expected: { kind: 'permanent', invalidAddress: true, reason: 'address has no webhook url' },
    },
    {
      name: 'a private address',
      request: () => deliveryOf({ ...ADDRESS, url: 'https://10.1.2.3/services/x' }, { text: 'hi' }),
      expected: { kind: 'permanent', invalidAddress: true, reason: /^webhook url rejected: / },
    },
    {
      name: 'plain http',
      request: () => deliveryOf({ ...ADDRESS, url: 'http://hooks.slack.com/services/x' }, { text: 'hi' }),
      expected: { kind: 'permanent', invalidAddress: true, reason: /^webhook url rejected: / },
    },
  ]);

  it('allows a local fake only in development', async () => {
    const local = deliveryOf({ ...ADDRESS, url: 'http://localhost:8788/slack' }, { text: 'hi' });
    const dev = await sendOnce(slack, { ENVIRONMENT: 'development' }, local, textResponse(200, 'ok'));
    expect(onlyCall(dev.calls).request.url).toBe('http://localhost:8788/slack');
    const prod = await sendOnce(slack, { ENVIRONMENT: 'production' }, local, textResponse(200, 'ok'));
    expect(prod.calls).toHaveLength(0);
  });
});
