// Teams Workflows webhook ("When a Teams webhook request is received") with an Adaptive Card:
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus } from '../../lib/http';
import type { SendRequest, SendResult } from '../types';
import { type BuiltRequest, invalidAddress, shortReason, webhookChatProvider } from './common';

type ChatAddress = AddressOf<'chat'>;

/** Adaptive Card schema version; 1.4 renders on Teams desktop, web and mobile. */
export const ADAPTIVE_CARD_VERSION = '1.4';

/** Builds the Adaptive Card body: bold title, wrapped text, and an "Open" button for the URL. */
export function buildAdaptiveCard(message: SendRequest<ChatAddress>['message']): Record<string, unknown> {
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
export function buildTeamsRequest(webhookUrl: string, request: SendRequest<ChatAddress>): BuiltRequest {
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

/** Maps the workflow endpoint's answer (202 Accepted on success) to a SendResult. */
export function classifyTeamsResponse(status: number, body: string, retryAfter?: number): SendResult {
  if (status >= 200 && status < 300) return { kind: 'sent' };
  const code = workflowErrorCode(body) ?? String(status);
  const reason = shortReason(`teams ${status} ${code}`);
  if (isRetryableStatus(status)) {
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  // The workflow was deleted or disabled, or its URL signature no longer matches.
  if (status === 401 || status === 403 || status === 404) return invalidAddress(reason, code);
  return { kind: 'permanent', reason, code };
}

/** Power Automate errors look like `{ error: { code: 'WorkflowNotFound', message } }`. */
function workflowErrorCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code.slice(0, 80) : undefined;
  } catch {
    return undefined;
  }
}

/** Microsoft Teams (Workflows webhooks) on the chat channel. */
export const teams = webhookChatProvider({
  name: 'teams',
  build: buildTeamsRequest,
  classify: classifyTeamsResponse,
  maxBodyChars: 2048,
});
