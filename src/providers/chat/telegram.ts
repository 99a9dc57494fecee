// Telegram Bot API sendMessage: https://core.telegram.org/bots/api#sendmessage
// (answers and ResponseParameters.retry_after: https://core.telegram.org/bots/api#making-requests)
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus } from '../../lib/http';
import type { HttpAnswer, HttpCall } from '../http-call';
import { httpProvider } from '../http-provider';
import { classOfStatus, type ErrorClass, redact, resultOfClass, sent, shortReason } from '../results';
import type { ProviderEnv, SendResult } from '../types';
import { readBaseUrl, requireVars } from '../vars';
import { CHAT_TIMEOUT_MS, type ChatRequest, invalidAddress, truncateText } from './common';

/**
 * Telegram's limits: a message text of 1-4,096 characters after entity parsing
 * (https://core.telegram.org/bots/api#sendmessage), about 30 messages a second across chats
 * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
 */
export const TELEGRAM_LIMITS = {
  timeoutMs: CHAT_TIMEOUT_MS,
  recipientsPerRequest: 1,
  documentedRatePerSecond: 30,
  fields: { text: 4096 },
};

export interface TelegramConfig {
  botToken: string;
  /** Without trailing slash; https://api.telegram.org unless TELEGRAM_BASE_URL is set. */
  baseUrl: string;
}

export const TELEGRAM_DEFAULT_BASE_URL = 'https://api.telegram.org';

/** Reads TELEGRAM_BOT_TOKEN (required) and TELEGRAM_BASE_URL (optional). */
export function telegramConfigFromEnv(env: ProviderEnv): TelegramConfig {
  const { TELEGRAM_BOT_TOKEN } = requireVars(env, 'telegram', ['TELEGRAM_BOT_TOKEN']);
  const baseUrl = readBaseUrl(env, 'TELEGRAM_BASE_URL') ?? TELEGRAM_DEFAULT_BASE_URL;
  return { botToken: TELEGRAM_BOT_TOKEN, baseUrl };
}

/**
 * Builds the sendMessage call. Plain text (no parse_mode) so template text never needs escaping;
 * the title heads the text and the URL ends it. Link previews stay off: notifications are short.
 */
export function buildTelegramRequest(config: TelegramConfig, request: ChatRequest): HttpCall {
  const { title, url } = request.message;
  const text = [title, request.message.text ?? request.message.body, url].filter(Boolean).join('\n\n');
  return {
    url: `${config.baseUrl}/bot${config.botToken}/sendMessage`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      chat_id: request.address.chatId,
      text: truncateText(text, TELEGRAM_LIMITS.fields.text),
      link_preview_options: { is_disabled: true },
    }),
  };
}

interface TelegramAnswer {
  ok?: boolean;
  result?: { message_id?: number };
  error_code?: number;
  description?: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

/**
 * 400 descriptions proving the chat id is dead. (Every 403 is: blocked by the user, user
 * deactivated, bot kicked, not a member, can't initiate a conversation.)
 */
const DEAD_CHAT_400 = [/chat not found/i, /group chat was (upgraded|deactivated)/i, /chat was deleted/i];

function telegramClass(
  status: number,
  errorCode: number,
  answer: TelegramAnswer,
  description: string,
): ErrorClass {
  if (isRetryableStatus(status)) return 'retryable';
  // 401: the token is wrong; 404: the bot API path (i.e. the token format) is wrong.
  const byCode = classOfStatus(errorCode, { 403: 'invalidAddress', 404: 'configError' });
  const deadChat =
    answer.parameters?.migrate_to_chat_id !== undefined ||
    DEAD_CHAT_400.some((pattern) => pattern.test(description));
  return byCode === 'permanent' && deadChat ? 'invalidAddress' : byCode;
}

/** Maps a Bot API answer to a SendResult. The bot token never appears in the result. */
export function classifyTelegramAnswer(answer: HttpAnswer, botToken: string): SendResult {
  const body = (answer.json ?? {}) as TelegramAnswer;
  if (answer.ok && body.ok === true) {
    const id = body.result?.message_id;
    return sent(id !== undefined ? String(id) : undefined);
  }
  const errorCode = body.error_code ?? answer.status;
  const description = body.description ?? `HTTP ${answer.status}`;
  const reason = shortReason(redact(`telegram ${errorCode} ${description}`, [botToken]));
  const errorClass = telegramClass(answer.status, errorCode, body, description);
  return resultOfClass(errorClass, reason, String(errorCode), body.parameters?.retry_after);
}

/** Telegram bots on the chat channel. */
export const telegram = httpProvider<TelegramConfig, AddressOf<'chat'>>({
  name: 'telegram',
  channel: 'chat',
  platforms: ['telegram'],
  limits: TELEGRAM_LIMITS,
  configFromEnv: telegramConfigFromEnv,
  steps: (config) => ({
    build: (request) =>
      request.address.chatId
        ? buildTelegramRequest(config, request)
        : invalidAddress('address has no telegram chatId'),
    classify: (answer) => classifyTelegramAnswer(answer, config.botToken),
    secrets: () => [config.botToken],
  }),
});
