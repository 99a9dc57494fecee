import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { teams } from '../../../src/providers/chat/teams';
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

const HOOK =
  'https://prod-00.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=test-signature-value';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'teams', url: HOOK };

async function post(
  message: Parameters<typeof sendRequest>[1],
  response = new Response(null, { status: 202 }),
) {
  const { fetch, calls } = recordingFetch(() => response);
  const result = await teams.create({}, depsWith(fetch)).send(sendRequest(ADDRESS, message));
  return { result, calls, payload: calls[0] ? JSON.parse(calls[0].body) : undefined };
}

describe('teams request', () => {
  it('posts the documented message envelope with one Adaptive Card', async () => {
    const { result, calls, payload } = await post({
      title: 'Order shipped',
      text: 'Order #42 left the warehouse',
      url: 'https://shop.example/o/42',
    });
    expectOutcome(result, { kind: 'sent' });
    expect(calls[0]?.request.url).toBe(new URL(HOOK).toString());
    expect(calls[0]?.request.method).toBe('POST');
    expect(calls[0]?.request.headers.get('content-type')).toBe('application/json');
    expect(payload).toEqual({
      type: 'message',
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.adaptive',
          contentUrl: null,
          content: {
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            type: 'AdaptiveCard',
            version: '1.4',
            body: [
              { type: 'TextBlock', text: 'Order shipped', weight: 'Bolder', size: 'Medium', wrap: true },
              { type: 'TextBlock', text: 'Order #42 left the warehouse', wrap: true },
            ],
            actions: [{ type: 'Action.OpenUrl', title: 'Open', url: 'https://shop.example/o/42' }],
          },
        },
      ],
    });
  });

  it('has no title block and no actions when the message has neither', async () => {
    const { payload } = await post({ text: 'Just text' });
    const card = payload.attachments[0].content;
    expect(card.body).toEqual([{ type: 'TextBlock', text: 'Just text', wrap: true }]);
    expect(card).not.toHaveProperty('actions');
  });
});

const ANSWERS: [string, () => Response, Outcome][] = [
  ['202 accepted', () => new Response(null, { status: 202 }), { kind: 'sent' }],
  ['200 ok', () => new Response('1', { status: 200 }), { kind: 'sent' }],
  [
    '400 bad request',
    () => jsonResponse(400, { error: { code: 'InvalidRequestContent', message: 'bad' } }),
    { kind: 'permanent', code: 'InvalidRequestContent' },
  ],
  [
    '401 signature mismatch',
    () => jsonResponse(401, { error: { code: 'DirectApiAuthorizationRequired', message: 'x' } }),
    { kind: 'permanent', invalidAddress: true },
  ],
  [
    '403 forbidden',
    () => new Response('', { status: 403 }),
    { kind: 'permanent', code: '403', invalidAddress: true },
  ],
  [
    '404 workflow gone',
    () => jsonResponse(404, { error: { code: 'WorkflowNotFound', message: 'gone' } }),
    { kind: 'permanent', code: 'WorkflowNotFound', invalidAddress: true },
  ],
  [
    '429 throttled',
    () => jsonResponse(429, { error: { code: 'WorkflowTriggerIsThrottled' } }, { 'retry-after': '12' }),
    { kind: 'retryable', code: 'WorkflowTriggerIsThrottled', retryAfterSeconds: 12 },
  ],
  ['500', () => new Response('', { status: 500 }), { kind: 'retryable', code: '500' }],
  ['504', () => new Response('', { status: 504 }), { kind: 'retryable', code: '504' }],
];

describe('teams answers', () => {
  it.each(ANSWERS)('%s', async (_name, response, expected) => {
    const { result } = await post({ text: 'hi' }, response());
    expectOutcome(result, expected);
    expect(JSON.stringify(result)).not.toContain('test-signature-value');
  });

  it.each([
    ['network error naming the URL', new TypeError(`Fetch API cannot load: ${HOOK}`), /network error/],
    ['long message cut mid-URL', new TypeError(`${'context '.repeat(20)}${HOOK}`), /network error: context/],
    ['timeout', timeoutError(), /timeout/],
  ])('%s is retryable and never leaks the signed URL', async (_name, error, reason) => {
    const result = await teams
      .create({}, depsWith(failingFetch(error)))
      .send(sendRequest(ADDRESS, { text: 'x' }));
    expectOutcome(result, { kind: 'retryable' });
    expect(result).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(JSON.stringify(result)).not.toContain('test-signature-value');
    expect(JSON.stringify(result)).not.toContain('logic.azure.com');
  });
});
