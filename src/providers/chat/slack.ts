// Slack incoming webhooks: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
// (errors: https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks)
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus } from '../../lib/http';
import type { SendRequest, SendResult } from '../types';
import { type BuiltRequest, invalidAddress, shortReason, truncateText, webhookChatProvider } from './common';

type ChatAddress = AddressOf<'chat'>;

/** Slack caps a section block's text at 3000 characters. */
const SECTION_TEXT_LIMIT = 3000;

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
export function buildSlackRequest(webhookUrl: string, request: SendRequest<ChatAddress>): BuiltRequest {
  const text = slackText(request);
  const payload: Record<string, unknown> = { text };
  if (request.message.title) {
    payload.blocks = [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: truncateText(`*${request.message.title}*\n${text}`, SECTION_TEXT_LIMIT),
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

function slackText(request: SendRequest<ChatAddress>): string {
  const text = request.message.text ?? request.message.body ?? '';
  return request.message.url ? `${text}\n<${request.message.url}>` : text;
}

/** Maps Slack's answer (200 `ok`, or a status with a plain-text error string) to a SendResult. */
export function classifySlackResponse(status: number, body: string, retryAfter?: number): SendResult {
  if (status >= 200 && status < 300) return { kind: 'sent' };
  const error = body.trim().split(/\s/)[0] ?? '';
  const reason = shortReason(`slack ${status}${error ? ` ${error}` : ''}`);
  const code = error || String(status);
  if (status === 429 || isRetryableStatus(status)) {
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  if (DEAD_HOOK_ERRORS.has(error) || (!error && (status === 404 || status === 410))) {
    return invalidAddress(reason, code);
  }
  return { kind: 'permanent', reason, code };
}

/** Slack incoming webhooks on the chat channel. */
export const slack = webhookChatProvider({
  name: 'slack',
  build: buildSlackRequest,
  classify: classifySlackResponse,
  maxBodyChars: 1024,
});
