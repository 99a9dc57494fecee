// Slack incoming webhooks: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
// (errors: https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks)
import type { HttpAnswer, HttpCall } from '../http-call';
import { classOfStatus, resultOfClass, sent, shortReason } from '../results';
import type { SendResult } from '../types';
import { CHAT_TIMEOUT_MS, type ChatRequest, truncateText, webhookChatProvider } from './common';

/**
 * Slack's limits: one message per second per incoming webhook
 * (https://docs.slack.dev/apis/web-api/rate-limits), `text` truncated past 40,000 characters
 * (https://docs.slack.dev/reference/methods/chat.postMessage), a section block's text at most
 * 3,000 (https://docs.slack.dev/reference/block-kit/blocks/section-block). Error answers are
 * short strings, so 1 KB of one is read.
 */
export const SLACK_LIMITS = {
  timeoutMs: CHAT_TIMEOUT_MS,
  recipientsPerRequest: 1,
  documentedRatePerSecond: 1,
  fields: { text: 40_000, sectionText: 3000 },
  answerChars: 1024,
};

/** Error strings that prove the webhook URL (or its channel/workspace) is gone for good. */
const DEAD_HOOK_ERRORS = new Set([
  'invalid_token',
  'no_service',
  'no_service_id',
  'no_team',
  'team_disabled',
  'channel_not_found',
  'channel_is_archived',
]);

/**
 * Builds the incoming-webhook POST: `text` always (it is the notification fallback), plus one
 * mrkdwn section block with the bold title when a title is present.
 */
export function buildSlackRequest(webhookUrl: string, request: ChatRequest): HttpCall {
  const text = slackText(request);
  const payload: Record<string, unknown> = { text };
  if (request.message.title) {
    payload.blocks = [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: truncateText(`*${request.message.title}*\n${text}`, SLACK_LIMITS.fields.sectionText),
        },
      },
    ];
  }
  return {
    url: webhookUrl,
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(payload),
  };
}

function slackText(request: ChatRequest): string {
  const text = request.message.text ?? request.message.body ?? '';
  return request.message.url ? `${text}\n<${request.message.url}>` : text;
}

/** Maps Slack's answer (200 `ok`, or a status with a plain-text error string) to a SendResult. */
export function classifySlackAnswer(answer: HttpAnswer): SendResult {
  if (answer.ok) return sent();
  const { status } = answer;
  const error = answer.body.trim().split(/\s/)[0] ?? '';
  const reason = shortReason(`slack ${status}${error ? ` ${error}` : ''}`);
  // A 401/403 without a dead-hook string is about this message (e.g. action_prohibited).
  const byStatus = classOfStatus(status, { 401: 'permanent', 403: 'permanent' });
  const deadHook = DEAD_HOOK_ERRORS.has(error) || (!error && (status === 404 || status === 410));
  const errorClass = byStatus === 'permanent' && deadHook ? 'invalidAddress' : byStatus;
  return resultOfClass(errorClass, reason, error || String(status), answer.retryAfterSeconds);
}

/** Slack incoming webhooks on the chat channel. */
export const slack = webhookChatProvider({
  name: 'slack',
  limits: SLACK_LIMITS,
  build: buildSlackRequest,
  classify: classifySlackAnswer,
});
