import { describe, expect, it } from 'vitest';
import type { AddressOf } from '../../../src/domain/address';
import { TEAMS_LIMITS, teams } from '../../../src/providers/chat/teams';
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
  sendOnce,
  textResponse,
} from '../harness';

const HOOK =
  'https://prod-00.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=test-signature-value';
const ADDRESS: AddressOf<'chat'> = { channel: 'chat', platform: 'teams', url: HOOK };

const card = (body: unknown[], actions?: unknown[]) => ({
  type: 'message',
  attachments: [
    {
      contentType: 'application/vnd.microsoft.card.adaptive',
      contentUrl: null,
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        body,
        ...(actions ? { actions } : {}),
      },
    },
  ],
});

// The documented message envelope with one Adaptive Card:
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
const SEND: ExactRequest = {
  url: new URL(HOOK).toString(),
  headers: { 'content-type': 'application/json' },
  body: {
    json: card(
      [
        { type: 'TextBlock', text: 'Order shipped', weight: 'Bolder', size: 'Medium', wrap: true },
        { type: 'TextBlock', text: 'Order #42 left the warehouse', wrap: true },
      ],
      [{ type: 'Action.OpenUrl', title: 'Open', url: 'https://shop.example/o/42' }],
    ),
  },
};

const TEAMS: ProviderCase = {
  definition: teams,
  env: () => ({}),
  request: () =>
    deliveryOf(ADDRESS, {
      title: 'Order shipped',
      text: 'Order #42 left the warehouse',
      url: 'https://shop.example/o/42',
    }),
  exact: () => [SEND],
  secrets: () => ['test-signature-value', 'logic.azure.com'],
};

describe('teams request', () => {
  it('has no title block and no actions when the message has neither', async () => {
    const { calls } = await sendOnce(
      teams,
      {},
      deliveryOf(ADDRESS, { text: 'Just text' }),
      textResponse(202, null),
    );
    expect(jsonOf(onlyCall(calls))).toEqual(card([{ type: 'TextBlock', text: 'Just text', wrap: true }]));
  });

  it('declares its documented limits', () => {
    expect(teams.limits).toBe(TEAMS_LIMITS);
    expect(TEAMS_LIMITS).toEqual({
      timeoutMs: 15_000,
      maxBodyBytes: 28 * 1024,
      recipientsPerRequest: 1,
      documentedRatePerSecond: 4,
      answerChars: 2048,
    });
  });
});

const ANSWERS: AnswerRow[] = [
  { name: '202 accepted', reply: textResponse(202, null), expected: { kind: 'sent' } },
  { name: '200 ok', reply: textResponse(200, '1'), expected: { kind: 'sent' } },
  {
    name: '400 bad request',
    reply: jsonResponse(400, { error: { code: 'InvalidRequestContent', message: 'bad' } }),
    expected: { kind: 'permanent', code: 'InvalidRequestContent', reason: 'teams 400 InvalidRequestContent' },
  },
  {
    name: '401 signature mismatch',
    reply: jsonResponse(401, { error: { code: 'DirectApiAuthorizationRequired', message: 'x' } }),
    expected: { kind: 'permanent', code: 'DirectApiAuthorizationRequired', invalidAddress: true },
  },
  {
    name: '403 forbidden',
    reply: textResponse(403, ''),
    expected: { kind: 'permanent', code: '403', invalidAddress: true },
  },
  {
    name: '404 workflow gone',
    reply: jsonResponse(404, { error: { code: 'WorkflowNotFound', message: 'gone' } }),
    expected: { kind: 'permanent', code: 'WorkflowNotFound', invalidAddress: true },
  },
  {
    name: '429 throttled',
    reply: jsonResponse(429, { error: { code: 'WorkflowTriggerIsThrottled' } }, { 'retry-after': '12' }),
    expected: { kind: 'retryable', code: 'WorkflowTriggerIsThrottled', retryAfterSeconds: 12 },
  },
  { name: '500', reply: textResponse(500, ''), expected: { kind: 'retryable', code: '500' } },
  { name: '504', reply: textResponse(504, ''), expected: { kind: 'retryable', code: '504' } },
];

describe('teams answers', () => {
  answerTable(TEAMS, [
    ...ANSWERS,
    ...networkRows(HOOK),
    {
      name: 'a long network error cut mid-URL',
      reply: new TypeError(`${'context '.repeat(20)}${HOOK}`),
      expected: { kind: 'unknown', reason: /^network error: (context ){20}\[(url|redacted)\]$/ },
    },
  ]);
});
