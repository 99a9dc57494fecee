import type { RenderedMessage } from '../../domain/message';
import { networkErrorReason, parseRetryAfter, safeText, tryParseJson } from '../../lib/http';
import { type HttpCall, shortReason as trimReason } from '../http-call';
import {
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  readVar,
  type SendRequest,
  type SendResult,
} from '../types';

/** Sent as `User-Agent` to every email API (Resend rejects requests without one). */
export const USER_AGENT = 'herald/0.1';

/** Upper bound for one provider call; a slower answer is treated as a retryable timeout. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A parsed mailbox: `Herald <noreply@example.com>` becomes `{ name: 'Herald', email: ... }`. */
export interface Mailbox {
  email: string;
  name?: string;
}

/** The sender identity shared by every email provider (`EMAIL_FROM`, optional `EMAIL_REPLY_TO`). */
export interface Sender {
  from: Mailbox;
  replyTo?: Mailbox;
}

/** An email delivery that passed the local checks: one recipient and a sendable message. */
export interface EmailJob {
  to: string;
  subject: string;
  html?: string;
  text?: string;
  headers: [string, string][];
}

const BARE_ADDRESS = /^[^\s<>@"]+@[^\s<>@"]+$/;
const NAMED_ADDRESS = /^(.*?)\s*<([^\s<>@"]+@[^\s<>@"]+)>$/;

/**
 * Parses `addr@example.com`, `Name <addr@example.com>` or `"Name, Inc." <addr@example.com>`.
 * Throws when the value is not a mailbox: a malformed `EMAIL_FROM` is a deployment error.
 */
export function parseMailbox(value: string, variable = 'EMAIL_FROM'): Mailbox {
  const trimmed = value.trim();
  if (BARE_ADDRESS.test(trimmed)) return { email: trimmed };
  const match = NAMED_ADDRESS.exec(trimmed);
  if (!match?.[2]) throw new TypeError(`${variable} is not a valid email address`);
  const name = unquote(match[1] ?? '');
  return name ? { email: match[2], name } : { email: match[2] };
}

function unquote(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')) {
    return trimmed.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return trimmed;
}

/** Formats a mailbox for APIs that take one string, quoting a display name with specials. */
export function formatMailbox(mailbox: Mailbox): string {
  if (!mailbox.name) return mailbox.email;
  const name = /[(),.:;<>@[\]\\"]/.test(mailbox.name)
    ? `"${mailbox.name.replace(/(["\\])/g, '\\$1')}"`
    : mailbox.name;
  return `${name} <${mailbox.email}>`;
}

/** Reads `EMAIL_FROM` (already checked present by the caller) and the optional `EMAIL_REPLY_TO`. */
export function readSender(env: ProviderEnv, from: string): Sender {
  const replyTo = readVar(env, 'EMAIL_REPLY_TO');
  return {
    from: parseMailbox(from),
    ...(replyTo ? { replyTo: parseMailbox(replyTo, 'EMAIL_REPLY_TO') } : {}),
  };
}

/** Reads an optional base URL var, falling back to the public default; trailing slashes are dropped. */
export function readBaseUrl(env: ProviderEnv, variable: string, fallback: string): string {
  return (readVar(env, variable) ?? fallback).trim().replace(/\/+$/, '');
}

/**
 * Checks what no provider can fix: the address is an email address and the rendered message has
 * a subject and a body. Returns the job, or the permanent result to record without a network call.
 */
export function toEmailJob(request: SendRequest): EmailJob | Extract<SendResult, { kind: 'permanent' }> {
  const address = request.address;
  if (address.channel !== 'email' || !address.email) {
    return { kind: 'permanent', reason: 'address is not an email address', code: 'invalid_address' };
  }
  const message: RenderedMessage = request.message;
  if (!message.subject) {
    return { kind: 'permanent', reason: 'rendered email has no subject', code: 'invalid_message' };
  }
  if (!message.html && !message.text) {
    return { kind: 'permanent', reason: 'rendered email has no html or text body', code: 'invalid_message' };
  }
  return {
    to: address.email,
    subject: message.subject,
    ...(message.html ? { html: message.html } : {}),
    ...(message.text ? { text: message.text } : {}),
    headers: Object.entries(message.headers ?? {}),
  };
}

/** True when `toEmailJob` refused the delivery. */
export function isRefused(job: EmailJob | SendResult): job is Extract<SendResult, { kind: 'permanent' }> {
  return 'kind' in job;
}

/** Joins the parts of a reason and keeps it short enough to log and store. */
export function shortReason(...parts: (string | number | undefined)[]): string {
  return trimReason(parts.filter((part) => part !== undefined && part !== '').join(': '));
}

/** A response body read once, as text and (when it is JSON) parsed. */
export interface ReadBody {
  text: string;
  json: unknown;
}

/** Reads a response body without throwing. */
export async function readBody(response: Response): Promise<ReadBody> {
  const text = await safeText(response);
  return { text, json: tryParseJson(text) };
}

/** Returns `value[key]` when `value` is an object and that field is a string. */
export function stringField(value: unknown, key: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === 'string' ? field : undefined;
}

/** Returns `value[key]` when `value` is an object and that field is a number. */
export function numberField(value: unknown, key: string): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === 'number' ? field : undefined;
}

/** `Retry-After` in seconds, when the answer carries one. */
export function retryAfterSeconds(response: Response, nowMs: number): number | undefined {
  return parseRetryAfter(response.headers.get('retry-after'), nowMs);
}

export { permanent, retryable } from '../http-call';

/** A network failure or timeout: the provider may not have seen the request, so try again. */
export function networkFailure(error: unknown): SendResult {
  return { kind: 'retryable', reason: networkErrorReason(error), code: 'network' };
}

/** A plain request description, the pure output of every `build*Request`. */
export type HttpRequest = HttpCall;

/** Like `toEmailJob`, for the pure builders: a refused delivery is a caller bug there. */
export function requireEmailJob(request: SendRequest): EmailJob {
  const job = toEmailJob(request);
  if (isRefused(job)) throw new TypeError(job.reason);
  return job;
}

/**
 * Sends a built request through the injected fetch with a timeout. Returns the response, or the
 * retryable result for a network failure (the only case where no answer arrived).
 */
export async function dispatch(
  fetcher: ProviderDeps['fetch'],
  request: HttpRequest | Request,
): Promise<Response | SendResult> {
  const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  try {
    if (request instanceof Request) return await fetcher(request, { signal });
    const { url, ...init } = request;
    return await fetcher(url, { ...init, signal });
  } catch (error) {
    return networkFailure(error);
  }
}

/** How one HTTP email API is configured, called and understood. */
export interface HttpEmailApi<C> {
  name: string;
  configFromEnv(env: ProviderEnv): C;
  /** Builds the (possibly signed) request; async so SigV4 signing fits. */
  build(
    config: C,
    request: SendRequest,
    nowMs: number,
  ): HttpRequest | Request | Promise<HttpRequest | Request>;
  interpret(response: Response, nowMs: number): SendResult | Promise<SendResult>;
}

/**
 * The provider definition every HTTP email API shares: refuse what cannot be an email, send it
 * once through the injected fetch, and let the API's own rules classify the answer.
 */
export function httpEmailProvider<C>(api: HttpEmailApi<C>): ProviderDefinition {
  return {
    name: api.name,
    channel: 'email',
    create(env: ProviderEnv, deps: ProviderDeps): Provider {
      const config = api.configFromEnv(env);
      return {
        name: api.name,
        channel: 'email',
        async send(request: SendRequest): Promise<SendResult> {
          const job = toEmailJob(request);
          if (isRefused(job)) return job;
          const answer = await dispatch(deps.fetch, await api.build(config, request, deps.now()));
          if (!(answer instanceof Response)) return answer;
          return api.interpret(answer, deps.now());
        },
      };
    },
  };
}
