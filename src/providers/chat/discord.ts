// Discord execute webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook
// (rate limits: https://discord.com/developers/docs/topics/rate-limits, JSON error codes:
// https://discord.com/developers/docs/topics/opcodes-and-status-codes#json)
import { type HttpAnswer, type HttpCall, stringField } from '../http-call';
import { classOfStatus, resultOfClass, sent, shortReason } from '../results';
import type { SendResult } from '../types';
import {
  CHAT_TIMEOUT_MS,
  type ChatRequest,
  DEAD_WEBHOOK_STATUSES,
  truncateText,
  webhookChatProvider,
} from './common';

/**
 * Discord's limits (https://discord.com/developers/docs/resources/webhook#execute-webhook and
 * .../resources/message#embed-object-embed-limits): `content` up to 2,000 characters, an embed
 * title up to 256. Rate limits are per route and announced in headers, so none is declared.
 */
export const DISCORD_LIMITS = {
  timeoutMs: CHAT_TIMEOUT_MS,
  recipientsPerRequest: 1,
  fields: { content: 2000, embedTitle: 256 },
};

/** JSON error codes meaning the webhook itself is gone or its token is wrong. */
const UNKNOWN_WEBHOOK = 10015;
const INVALID_WEBHOOK_TOKEN = 50027;

/**
 * Builds the execute-webhook POST with `?wait=true` (so Discord confirms and returns the message
 * id). `allowed_mentions.parse = []` keeps template text from pinging @everyone, roles or users.
 */
export function buildDiscordRequest(webhookUrl: string, request: ChatRequest): HttpCall {
  const url = new URL(webhookUrl);
  url.searchParams.set('wait', 'true');
  const { title, url: link } = request.message;
  const text = request.message.text ?? request.message.body ?? '';
  const payload: Record<string, unknown> = {
    content: truncateText(title || !link ? text : `${text}\n${link}`, DISCORD_LIMITS.fields.content),
    allowed_mentions: { parse: [] },
  };
  if (title) {
    payload.embeds = [
      { title: truncateText(title, DISCORD_LIMITS.fields.embedTitle), ...(link ? { url: link } : {}) },
    ];
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

/** Maps Discord's answer to a SendResult; a `retry_after` in the body wins over the header. */
export function classifyDiscordAnswer(answer: HttpAnswer): SendResult {
  const { status, json } = answer;
  if (answer.ok) return sent(stringField(json, 'id'));
  const error = (json && typeof json === 'object' ? json : {}) as DiscordError;
  const code = typeof error.code === 'number' ? String(error.code) : String(status);
  const reason = shortReason(`discord ${status}${error.message ? ` ${error.message}` : ''} (${code})`);
  const retryAfter =
    typeof error.retry_after === 'number' ? Math.ceil(error.retry_after) : answer.retryAfterSeconds;
  const byStatus = classOfStatus(status, DEAD_WEBHOOK_STATUSES);
  const deadWebhook = error.code === UNKNOWN_WEBHOOK || error.code === INVALID_WEBHOOK_TOKEN;
  return resultOfClass(
    byStatus === 'permanent' && deadWebhook ? 'invalidAddress' : byStatus,
    reason,
    code,
    retryAfter,
  );
}

/** Discord webhooks on the chat channel. */
export const discord = webhookChatProvider({
  name: 'discord',
  limits: DISCORD_LIMITS,
  build: buildDiscordRequest,
  classify: classifyDiscordAnswer,
});
