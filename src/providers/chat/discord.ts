// Discord execute webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook
// (rate limits: https://discord.com/developers/docs/topics/rate-limits, JSON error codes:
// https://discord.com/developers/docs/topics/opcodes-and-status-codes#json)
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus, tryParseJson } from '../../lib/http';
import type { SendRequest, SendResult } from '../types';
import { type BuiltRequest, invalidAddress, shortReason, truncateText, webhookChatProvider } from './common';

type ChatAddress = AddressOf<'chat'>;

/** Documented limits of a message and an embed. */
const CONTENT_LIMIT = 2000;
const EMBED_TITLE_LIMIT = 256;

/** JSON error codes meaning the webhook itself is gone or its token is wrong. */
const UNKNOWN_WEBHOOK = 10015;
const INVALID_WEBHOOK_TOKEN = 50027;

/**
 * Builds the execute-webhook POST with `?wait=true` (so Discord confirms and returns the message
 * id). `allowed_mentions.parse = []` keeps template text from pinging @everyone, roles or users.
 */
export function buildDiscordRequest(webhookUrl: string, request: SendRequest<ChatAddress>): BuiltRequest {
  const url = new URL(webhookUrl);
  url.searchParams.set('wait', 'true');
  const { title, url: link } = request.message;
  const text = request.message.text ?? request.message.body ?? '';
  const payload: Record<string, unknown> = {
    content: truncateText(title || !link ? text : `${text}\n${link}`, CONTENT_LIMIT),
    allowed_mentions: { parse: [] },
  };
  if (title) {
    payload.embeds = [{ title: truncateText(title, EMBED_TITLE_LIMIT), ...(link ? { url: link } : {}) }];
  }
  return {
    url: url.toString(),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  };
}

interface DiscordError {
  code?: number;
  message?: string;
  retry_after?: number;
}

/** Maps Discord's answer to a SendResult; `retryAfterHeader` is the parsed Retry-After header. */
export function classifyDiscordResponse(
  status: number,
  bodyText: string,
  retryAfterHeader?: number,
): SendResult {
  const json = tryParseJson(bodyText);
  if (status >= 200 && status < 300) {
    const id = (json as { id?: unknown } | undefined)?.id;
    return { kind: 'sent', ...(typeof id === 'string' ? { providerMessageId: id } : {}) };
  }
  const error = (json && typeof json === 'object' ? json : {}) as DiscordError;
  const code = typeof error.code === 'number' ? String(error.code) : String(status);
  const reason = shortReason(`discord ${status}${error.message ? ` ${error.message}` : ''} (${code})`);
  if (status === 429 || isRetryableStatus(status)) {
    const retryAfter =
      typeof error.retry_after === 'number' ? Math.ceil(error.retry_after) : retryAfterHeader;
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  const deadWebhook =
    error.code === UNKNOWN_WEBHOOK ||
    error.code === INVALID_WEBHOOK_TOKEN ||
    status === 401 ||
    status === 403 ||
    status === 404;
  if (deadWebhook) return invalidAddress(reason, code);
  return { kind: 'permanent', reason, code };
}

/** Discord webhooks on the chat channel. */
export const discord = webhookChatProvider({
  name: 'discord',
  build: buildDiscordRequest,
  classify: classifyDiscordResponse,
});
