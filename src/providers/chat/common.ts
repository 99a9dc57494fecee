import type { AddressOf } from '../../domain/address';
import type { ChatPlatform } from '../../domain/channels';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import {
  type HttpCall as BuiltRequest,
  callHttp,
  isHttpAnswer,
  networkFailure,
  shortReason,
} from '../http-call';
import {
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  type SendRequest,
  type SendResult,
} from '../types';

/** The outgoing HTTP request a chat provider builds; `body` is the exact JSON text sent. */
/** The outgoing HTTP request a provider builds; `body` is the exact text sent. */
export type { HttpCall as BuiltRequest } from '../http-call';

/** Chat webhooks are short calls; a hung endpoint must not hold the queue consumer. */
export const CHAT_TIMEOUT_MS = 15_000;

/** Loopback webhook targets (a local fake) are allowed only when ENVIRONMENT is exactly 'development'. */
export function allowLoopbackFromEnv(env: ProviderEnv): boolean {
  return readVar(env, 'ENVIRONMENT') === 'development';
}

/**
 * Validates a chat webhook URL from an address. Incoming-webhook URLs carry their secret in the
 * path, so the reason never repeats the URL.
 */
export function checkChatWebhookUrl(
  url: string | undefined,
  allowLoopback: boolean,
): { ok: true; url: string } | { ok: false; result: SendResult } {
  if (!url) return { ok: false, result: invalidAddress('address has no webhook url') };
  const check = checkWebhookUrl(url, { allowLoopback });
  if (!check.ok) return { ok: false, result: invalidAddress(`webhook url rejected: ${check.reason}`) };
  return { ok: true, url: check.url.toString() };
}

/** A permanent answer proving the address can never work. */
export function invalidAddress(reason: string, code?: string): SendResult {
  return { kind: 'permanent', reason: shortReason(reason), invalidAddress: true, ...(code ? { code } : {}) };
}

export { networkFailure, redact, shortReason } from '../http-call';

/**
 * Cuts text to at most `maxUnits` UTF-16 code units without splitting a surrogate pair, adding an
 * ellipsis when it cuts. UTF-16 units are what Discord and Telegram count.
 */
export function truncateText(text: string, maxUnits: number): string {
  if (text.length <= maxUnits) return text;
  let end = maxUnits - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/**
 * Posts a built chat-webhook request: no redirects followed, a timeout, and a network failure
 * reported without the URL (which holds the webhook's secret). The caller classifies the answer.
 */
export function postChatWebhook(
  deps: ProviderDeps,
  built: BuiltRequest,
  secrets: readonly string[],
  maxBodyChars = 4096,
) {
  return callHttp(deps, built, {
    timeoutMs: CHAT_TIMEOUT_MS,
    redirect: 'manual',
    maxBodyChars,
    onNetworkError: (error) => networkFailure(error, secrets),
  });
}

export { isHttpAnswer as isAnswer } from '../http-call';

/** A chat platform reached through an incoming-webhook URL held in the address. */
export interface WebhookChatPlatform {
  name: ChatPlatform;
  /** The exact request for one message to the (checked) webhook URL. */
  build(webhookUrl: string, request: SendRequest<AddressOf<'chat'>>): BuiltRequest;
  /** The platform's documented answers mapped to sent, retryable or permanent. */
  classify(status: number, body: string, retryAfterSeconds?: number): SendResult;
  /** How much of an answer's body is read to classify it. */
  maxBodyChars?: number;
}

/**
 * The provider of a webhook chat platform. It needs no credential of Herald's (the URL in each
 * address is the credential), so the reason of every failure is kept free of that URL.
 */
export function webhookChatProvider(platform: WebhookChatPlatform): ProviderDefinition {
  const { name } = platform;
  return {
    name,
    channel: 'chat',
    platforms: [name],
    create(env: ProviderEnv, deps: ProviderDeps): Provider<AddressOf<'chat'>> {
      const allowLoopback = allowLoopbackFromEnv(env);
      return {
        name,
        channel: 'chat',
        platforms: [name],
        async send(request) {
          const target = checkChatWebhookUrl(request.address.url, allowLoopback);
          if (!target.ok) return target.result;
          const built = platform.build(target.url, request);
          const secrets = [built.url, target.url, request.address.url ?? ''];
          const answer = await postChatWebhook(deps, built, secrets, platform.maxBodyChars);
          if (!isHttpAnswer(answer)) return answer;
          return platform.classify(answer.status, answer.body, answer.retryAfterSeconds);
        },
      };
    },
  };
}
