// What the chat platforms share: address checks, text truncation, and the provider factory of
// the platforms reached through an incoming-webhook URL held in the address.
import type { AddressOf } from '../../domain/address';
import type { ChatPlatform } from '../../domain/channels';
import { checkWebhookUrl } from '../../lib/ssrf-guard';
import type { CallLimits, HttpAnswer, HttpCall } from '../http-call';
import { httpProvider } from '../http-provider';
import { type ErrorClass, permanent, shortReason } from '../results';
import type { ProviderDefinition, SendRequest, SendResult } from '../types';
import { allowsLoopback } from '../vars';

/** A chat delivery's request. */
export type ChatRequest = SendRequest<AddressOf<'chat'>>;

/** Chat webhooks are short calls; a hung endpoint must not hold the queue consumer. */
export const CHAT_TIMEOUT_MS = 15_000;

/** Statuses that say an incoming webhook was deleted, disabled or its secret no longer matches. */
export const DEAD_WEBHOOK_STATUSES: Readonly<Record<number, ErrorClass>> = {
  401: 'invalidAddress',
  403: 'invalidAddress',
  404: 'invalidAddress',
};

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
  return permanent(shortReason(reason), code, { invalidAddress: true });
}

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

/** A chat platform reached through an incoming-webhook URL held in the address. */
export interface WebhookChatPlatform {
  name: ChatPlatform;
  limits: CallLimits;
  /** The exact request for one message to the (checked) webhook URL. */
  build(webhookUrl: string, request: ChatRequest): HttpCall;
  /** The platform's documented answers mapped to sent, retryable or permanent. */
  classify(answer: HttpAnswer): SendResult;
}

/**
 * The provider of a webhook chat platform. It needs no credential of Herald's (the URL in each
 * address is the credential), so every form of that URL is kept out of a failure's reason.
 */
export function webhookChatProvider(platform: WebhookChatPlatform): ProviderDefinition {
  return httpProvider<{ allowLoopback: boolean }, AddressOf<'chat'>>({
    name: platform.name,
    channel: 'chat',
    platforms: [platform.name],
    limits: platform.limits,
    configFromEnv: (env) => ({ allowLoopback: allowsLoopback(env) }),
    steps: ({ allowLoopback }) => ({
      build(request) {
        const target = checkChatWebhookUrl(request.address.url, allowLoopback);
        return target.ok ? platform.build(target.url, request) : target.result;
      },
      classify: platform.classify,
      secrets: (request, call) => [call.url, request.address.url ?? '', normalizedUrl(request.address.url)],
    }),
  });
}

function normalizedUrl(url: string | undefined): string {
  return url && URL.canParse(url) ? new URL(url).toString() : '';
}
