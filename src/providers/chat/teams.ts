// Teams Workflows webhook ("When a Teams webhook request is received") with an Adaptive Card:
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
import type { HttpAnswer, HttpCall } from '../http-call';
import { classOfStatus, resultOfClass, sent, shortReason } from '../results';
import type { SendResult } from '../types';
import { CHAT_TIMEOUT_MS, type ChatRequest, DEAD_WEBHOOK_STATUSES, webhookChatProvider } from './common';

/**
 * Teams limits (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook):
 * a message of at most 28 KB, and more than four requests a second are throttled.
 */
export const TEAMS_LIMITS = {
  timeoutMs: CHAT_TIMEOUT_MS,
  maxBodyBytes: 28 * 1024,
  recipientsPerRequest: 1,
  documentedRatePerSecond: 4,
  answerChars: 2048,
};

/** Adaptive Card schema version; 1.4 renders on Teams desktop, web and mobile. */
export const ADAPTIVE_CARD_VERSION = '1.4';

/** Builds the Adaptive Card body: bold title, wrapped text, and an "Open" button for the URL. */
export function buildAdaptiveCard(message: ChatRequest['message']): Record<string, unknown> {
  const body: Record<string, unknown>[] = [];
  if (message.title) {
    body.push({ type: 'TextBlock', text: message.title, weight: 'Bolder', size: 'Medium', wrap: true });
  }
  body.push({ type: 'TextBlock', text: message.text ?? message.body ?? '', wrap: true });
  const card: Record<string, unknown> = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: ADAPTIVE_CARD_VERSION,
    body,
  };
  if (message.url) card.actions = [{ type: 'Action.OpenUrl', title: 'Open', url: message.url }];
  return card;
}

/** Builds the documented message envelope: one Adaptive Card attachment. */
export function buildTeamsRequest(webhookUrl: string, request: ChatRequest): HttpCall {
  const payload = {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: buildAdaptiveCard(request.message),
      },
    ],
  };
  return {
    url: webhookUrl,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  };
}

/**
 * Maps the workflow endpoint's answer (202 Accepted on success) to a SendResult. A 401/403/404
 * means the workflow was deleted or disabled, or its URL signature no longer matches.
 */
export function classifyTeamsAnswer(answer: HttpAnswer): SendResult {
  if (answer.ok) return sent();
  const code = workflowErrorCode(answer.json) ?? String(answer.status);
  const errorClass = classOfStatus(answer.status, DEAD_WEBHOOK_STATUSES);
  return resultOfClass(
    errorClass,
    shortReason(`teams ${answer.status} ${code}`),
    code,
    answer.retryAfterSeconds,
  );
}

/** Power Automate errors look like `{ error: { code: 'WorkflowNotFound', message } }`. */
function workflowErrorCode(json: unknown): string | undefined {
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code.slice(0, 80) : undefined;
}

/** Microsoft Teams (Workflows webhooks) on the chat channel. */
export const teams = webhookChatProvider({
  name: 'teams',
  limits: TEAMS_LIMITS,
  build: buildTeamsRequest,
  classify: classifyTeamsAnswer,
});
