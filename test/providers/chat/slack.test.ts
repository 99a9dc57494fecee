import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { slack } from '../../../src/providers/chat/slack';
import {
  depsWith,
  expectOutcome,
  failingFetch,
  type Outcome,
  recordingFetch,
  sendRequest,
  timeoutError,
} from './harness';

const HOOK = 'https://hooks.slack.com/services/T00000000/B00000000/testtesttesttesttesttest';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'slack', url: HOOK };

async function post(
  message: Parameters<typeof sendRequest>[1],
  response = new Response('ok'),
  env = {},
  to = ADDRESS,
) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await slack.create(env, depsWith(fetch)).send(sendRequest(to, message));
  return { result, calls, payload: calls[0] ? JSON.parse(calls[0].body) : undefined };
}

describe('slack request', () => {
  it('posts text only when there is no title', async () => {
    const { result, calls, payload } = await post({ text: 'Deploy finished' });
    expectOutcome(result, { kind: 'sent' });
    expect(calls[0]?.request.url).toBe(HOOK);
    expect(calls[0]?.request.method).toBe('POST');
    expect(calls[0]?.request.headers.get('content-type')).toMatch(/^application\/json/);
    expect(calls[0]?.init?.redirect).toBe('manual');
    expect(payload).toEqual({ text: 'Deploy finished' });
  });

  it('adds one mrkdwn section with the bold title, and the link', async () => {
    const { payload } = await post({
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
    const { payload } = await post({ title: 'Long', text: 'x'.repeat(5000) });
    expect(payload.blocks[0].text.text.length).toBeLessThanOrEqual(3000);
  });
});

const text =
  (status: number, body: string, headers: Record<string, string> = {}) =>
  () =>
    new Response(body, { status, headers: { 'content-type': 'text/plain', ...headers } });

/** Plain-text error strings Slack documents for incoming webhooks. */
const ANSWERS: [string, () => Response, Outcome][] = [
  ['200 ok', text(200, 'ok'), { kind: 'sent' }],
  ['400 invalid_payload', text(400, 'invalid_payload'), { kind: 'permanent', code: 'invalid_payload' }],
  ['400 user_not_found', text(400, 'user_not_found'), { kind: 'permanent', code: 'user_not_found' }],
  [
    '400 no_service_id',
    text(400, 'no_service_id'),
    { kind: 'permanent', code: 'no_service_id', invalidAddress: true },
  ],
  ['403 action_prohibited', text(403, 'action_prohibited'), { kind: 'permanent', code: 'action_prohibited' }],
  [
    '403 invalid_token',
    text(403, 'invalid_token'),
    { kind: 'permanent', code: 'invalid_token', invalidAddress: true },
  ],
  [
    '404 no_service',
    text(404, 'no_service'),
    { kind: 'permanent', code: 'no_service', invalidAddress: true },
  ],
  ['404 no_team', text(404, 'no_team'), { kind: 'permanent', code: 'no_team', invalidAddress: true }],
  [
    '404 team_disabled',
    text(404, 'team_disabled'),
    { kind: 'permanent', code: 'team_disabled', invalidAddress: true },
  ],
  [
    '404 channel_not_found',
    text(404, 'channel_not_found'),
    { kind: 'permanent', code: 'channel_not_found', invalidAddress: true },
  ],
  [
    '410 channel_is_archived',
    text(410, 'channel_is_archived'),
    { kind: 'permanent', code: 'channel_is_archived', invalidAddress: true },
  ],
  ['404 with an empty body', text(404, ''), { kind: 'permanent', code: '404', invalidAddress: true }],
  [
    '429 rate limited',
    text(429, 'rate_limited', { 'retry-after': '30' }),
    { kind: 'retryable', retryAfterSeconds: 30 },
  ],
  ['500 rollup_error', text(500, 'rollup_error'), { kind: 'retryable', code: 'rollup_error' }],
  ['502 without body', text(502, ''), { kind: 'retryable', code: '502' }],
  [
    '302 redirect is not followed',
    () => new Response(null, { status: 302, headers: { location: 'https://x.example' } }),
    { kind: 'permanent', code: '302' },
  ],
];

describe('slack answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await post({ text: 'hi' }, response());
    expectOutcome(result, expected);
    if (result.kind !== 'sent') expect(result.reason).not.toContain('testtesttest');
  });

  it.each([
    ['network error that names the URL', new TypeError(`Fetch API cannot load: ${HOOK}`), /network error/],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable and never leaks the webhook URL', async (_name, error, reason) => {
    const result = await slack
      .create({}, depsWith(failingFetch(error)))
      .send(sendRequest(ADDRESS, { text: 'hi' }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(JSON.stringify(result)).not.toContain('testtesttest');
  });
});

describe('slack address checks', () => {
  it.each([
    ['no url', { channel: 'chat', platform: 'slack' } as AddressOf<'chat'>],
    ['private address', { ...ADDRESS, url: 'https://10.1.2.3/services/x' }],
    ['plain http', { ...ADDRESS, url: 'http://hooks.slack.com/services/x' }],
  ])('%s is a permanent invalid address, never fetched', async (_name, to) => {
    const { result, calls } = await post({ text: 'hi' }, undefined, {}, to);
    expect(calls).toHaveLength(0);
    expectOutcome(result, { kind: 'permanent', invalidAddress: true });
  });

  it('allows a local fake only in development', async () => {
    const local = { ...ADDRESS, url: 'http://localhost:8788/slack' };
    expect((await post({ text: 'hi' }, undefined, { ENVIRONMENT: 'development' }, local)).calls).toHaveLength(
      1,
    );
    expect((await post({ text: 'hi' }, undefined, { ENVIRONMENT: 'production' }, local)).calls).toHaveLength(
      0,
    );
  });
});
