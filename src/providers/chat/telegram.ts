// Telegram Bot API sendMessage: https://core.telegram.org/bots/api#sendmessage
// (answers and ResponseParameters.retry_after: https://core.telegram.org/bots/api#making-requests)
import type { AddressOf } from '../../domain/address';
import { isRetryableStatus, tryParseJson } from '../../lib/http';
import { callHttp, isHttpAnswer } from '../http-call';
import {
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  requireVars,
  type SendRequest,
  type SendResult,
} from '../types';
import {
  type BuiltRequest,
  CHAT_TIMEOUT_MS,
  invalidAddress,
  networkFailure,
  redact,
  shortReason,
  truncateText,
} from './common';

type ChatAddress = AddressOf<'chat'>;

export interface TelegramConfig {
  botToken: string;
  /** Without trailing slash; https://api.telegram.org unless TELEGRAM_BASE_URL is set. */
  baseUrl: string;
}

export const TELEGRAM_DEFAULT_BASE_URL = 'https://api.telegram.org';

/** Telegram's limit on a message's text, in UTF-16 code units. */
const TEXT_LIMIT = 4096;

/** Reads TELEGRAM_BOT_TOKEN (required) and TELEGRAM_BASE_URL (optional). */
export function telegramConfigFromEnv(env: ProviderEnv): TelegramConfig {
  const { TELEGRAM_BOT_TOKEN } = requireVars(env, 'telegram', ['TELEGRAM_BOT_TOKEN']);
  const baseUrl = (readVar(env, 'TELEGRAM_BASE_URL') ?? TELEGRAM_DEFAULT_BASE_URL).replace(/\/+$/, '');
  return { botToken: TELEGRAM_BOT_TOKEN, baseUrl };
}

/**
 * Builds the sendMessage call. Plain text (no parse_mode) so template text never needs escaping;
 * the title heads the text and the URL ends it. Link previews stay off: notifications are short.
 */
export function buildTelegramRequest(
  config: TelegramConfig,
  request: SendRequest<ChatAddress>,
): BuiltRequest {
  const { title, url } = request.message;
  const text = [title, request.message.text ?? request.message.body, url].filter(Boolean).join('\n\n');
  return {
    url: `${config.baseUrl}/bot${config.botToken}/sendMessage`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      chat_id: request.address.chatId,
      text: truncateText(text, TEXT_LIMIT),
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

/** Maps a Bot API answer to a SendResult. The bot token never appears in the result. */
export function classifyTelegramResponse(status: number, bodyText: string, botToken: string): SendResult {
  const answer = (tryParseJson(bodyText) ?? {}) as TelegramAnswer;
  if (status >= 200 && status < 300 && answer.ok === true) {
    const id = answer.result?.message_id;
    return { kind: 'sent', ...(id !== undefined ? { providerMessageId: String(id) } : {}) };
  }
  const errorCode = answer.error_code ?? status;
  const description = answer.description ?? `HTTP ${status}`;
  const reason = shortReason(redact(`telegram ${errorCode} ${description}`, [botToken]));
  const code = String(errorCode);
  if (errorCode === 429 || isRetryableStatus(status)) {
    const retryAfter = answer.parameters?.retry_after;
    return {
      kind: 'retryable',
      reason,
      code,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  // 401: the token is wrong; 404: the bot API path (i.e. the token format) is wrong.
  if (errorCode === 401 || errorCode === 404) return { kind: 'permanent', reason, code, configError: true };
  const deadChat =
    errorCode === 403 ||
    answer.parameters?.migrate_to_chat_id !== undefined ||
    DEAD_CHAT_400.some((pattern) => pattern.test(description));
  if (deadChat) {
    return invalidAddress(reason, code);
  }
  return { kind: 'permanent', reason, code };
}

/** Creates the Telegram provider for one bot. */
export function createTelegramProvider(config: TelegramConfig, deps: ProviderDeps): Provider<ChatAddress> {
  const secrets = [config.botToken];
  return {
    name: 'telegram',
    channel: 'chat',
    platforms: ['telegram'],
    async send(request) {
      if (!request.address.chatId) return invalidAddress('address has no telegram chatId');
      const built = buildTelegramRequest(config, request);
      const answer = await callHttp(deps, built, {
        timeoutMs: CHAT_TIMEOUT_MS,
        onNetworkError: (error) => networkFailure(error, secrets),
      });
      if (!isHttpAnswer(answer)) return answer;
      return classifyTelegramResponse(answer.status, answer.body, config.botToken);
    },
  };
}

/** Telegram bots on the chat channel. */
export const telegram: ProviderDefinition = {
  name: 'telegram',
  channel: 'chat',
  platforms: ['telegram'],
  create: (env, deps) => createTelegramProvider(telegramConfigFromEnv(env), deps),
};
