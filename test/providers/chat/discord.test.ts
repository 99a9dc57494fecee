import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { discord } from '../../../src/providers/chat/discord';
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

const HOOK = 'https://discord.com/api/webhooks/123456789012345678/test-webhook-token_abc';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'discord', url: HOOK };
const CREATED = { id: '1199999999999999999', type: 0, content: 'x', channel_id: '1' };

async function post(
  message: Parameters<typeof sendRequest>[1],
  response: Response = jsonResponse(200, CREATED),
) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await discord.create({}, depsWith(fetch)).send(sendRequest(ADDRESS, message));
  return { result, calls, payload: calls[0] ? JSON.parse(calls[0].body) : undefined };
}

describe('discord request', () => {
  it('executes the webhook with wait=true and no mentions', async () => {
    const { result, calls, payload } = await post({ text: 'Hello @everyone <@&123>' });
    expectOutcome(result, { kind: 'sent', providerMessageId: CREATED.id });
    const url = new URL(calls[0]?.request.url ?? '');
    expect(`${url.origin}${url.pathname}`).toBe(HOOK);
    expect(url.searchParams.get('wait')).toBe('true');
    expect(calls[0]?.request.method).toBe('POST');
    expect(calls[0]?.request.headers.get('content-type')).toBe('application/json');
    expect(payload).toEqual({ content: 'Hello @everyone <@&123>', allowed_mentions: { parse: [] } });
  });

  it('puts the title and link in an embed', async () => {
    const { payload } = await post({
      title: 'Order shipped',
      text: 'On its way',
      url: 'https://shop.example/o/1',
    });
    expect(payload).toEqual({
      content: 'On its way',
      allowed_mentions: { parse: [] },
      embeds: [{ title: 'Order shipped', url: 'https://shop.example/o/1' }],
    });
  });

  it('appends the link to the content when there is no title', async () => {
    const { payload } = await post({ text: 'See', url: 'https://shop.example/o/1' });
    expect(payload.content).toBe('See\nhttps://shop.example/o/1');
  });

  it('truncates content to 2000 UTF-16 units without splitting a surrogate pair', async () => {
    const { payload } = await post({ text: `${'a'.repeat(1998)}😀😀😀` });
    expect(payload.content.length).toBeLessThanOrEqual(2000);
    expect(payload.content.endsWith('…')).toBe(true);
    expect(payload.content).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect((await post({ text: 'a'.repeat(2000) })).payload.content).toBe('a'.repeat(2000));
  });
});

const ANSWERS: [string, () => Response, Outcome][] = [
  ['200 with message', () => jsonResponse(200, CREATED), { kind: 'sent', providerMessageId: CREATED.id }],
  ['204 no content', () => new Response(null, { status: 204 }), { kind: 'sent' }],
  [
    '404 Unknown Webhook',
    () => jsonResponse(404, { message: 'Unknown Webhook', code: 10015 }),
    { kind: 'permanent', code: '10015', invalidAddress: true },
  ],
  [
    '401 Invalid Webhook Token',
    () => jsonResponse(401, { message: 'Invalid Webhook Token', code: 50027 }),
    { kind: 'permanent', code: '50027', invalidAddress: true },
  ],
  [
    '403 Missing Access',
    () => jsonResponse(403, { message: 'Missing Access', code: 50001 }),
    { kind: 'permanent', code: '50001', invalidAddress: true },
  ],
  [
    '400 invalid form body',
    () => jsonResponse(400, { message: 'Invalid Form Body', code: 50035 }),
    { kind: 'permanent', code: '50035' },
  ],
  [
    '429 with retry_after float',
    () =>
      jsonResponse(
        429,
        { message: 'You are being rate limited.', retry_after: 1.337, global: false },
        { 'retry-after': '1' },
      ),
    { kind: 'retryable', code: '429', retryAfterSeconds: 2 },
  ],
  [
    '429 with header only',
    () => new Response('', { status: 429, headers: { 'retry-after': '5' } }),
    { kind: 'retryable', retryAfterSeconds: 5 },
  ],
  ['500', () => new Response('', { status: 500 }), { kind: 'retryable', code: '500' }],
  [
    '502 html',
    () => new Response('<html>bad gateway</html>', { status: 502 }),
    { kind: 'retryable', code: '502' },
  ],
];

describe('discord answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await post({ text: 'hi' }, response());
    expectOutcome(result, expected);
    expect(JSON.stringify(result)).not.toContain('test-webhook-token');
  });

  it.each([
    [
      'network error naming the URL',
      new TypeError(`Fetch API cannot load: ${HOOK}?wait=true`),
      /network error/,
    ],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable and never leaks the token', async (_name, error, reason) => {
    const result = await discord
      .create({}, depsWith(failingFetch(error)))
      .send(sendRequest(ADDRESS, { text: 'x' }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(JSON.stringify(result)).not.toContain('test-webhook-token');
  });

  it('rejects an internal webhook URL before fetching', async () => {
    const { fetch, calls } = recordingFetch(() => new Response(null, { status: 204 }));
    const to = { ...ADDRESS, url: 'https://169.254.169.254/api/webhooks/1/x' };
    const result = await discord.create({}, depsWith(fetch)).send(sendRequest(to, { text: 'x' }));
    expect(calls).toHaveLength(0);
    expectOutcome(result, { kind: 'permanent', invalidAddress: true });
  });
});
