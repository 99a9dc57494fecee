// Cloudflare Email Service Workers binding: https://developers.cloudflare.com/email-service/api/send-emails/workers-api/
import { permanent, retryable, sent, shortReason } from '../results';
import {
  MissingCredentialsError,
  type Provider,
  type ProviderDefinition,
  type ProviderDeps,
  type ProviderEnv,
  type SendRequest,
  type SendResult,
} from '../types';
import { readVar } from '../vars';
import { type Mailbox, readSender, type Sender } from './mailbox';
import { isRefused, MB, requireEmailJob, toEmailJob } from './shared';

/**
 * Email Service limits (https://developers.cloudflare.com/email-service/platform/limits/): 5 MiB
 * per message (25 MiB to verified addresses only) and 50 recipients. No timeout is declared: the
 * binding is not an HTTP call of Herald's, the Workers runtime bounds it.
 */
export const CLOUDFLARE_EMAIL_LIMITS = { maxBodyBytes: 5 * MB, recipientsPerRequest: 50 };

/** The structured `send()` message of a `send_email` binding (the builder form, not raw MIME). */
export interface CloudflareEmailMessage {
  to: string;
  from: string | { email: string; name: string };
  subject: string;
  html?: string;
  text?: string;
  replyTo?: string | { email: string; name: string };
  headers?: Record<string, string>;
}

/** The part of the `send_email` binding Herald uses; resolves to `{ messageId }`. */
export interface CloudflareEmailBinding {
  send(message: CloudflareEmailMessage): Promise<{ messageId?: string } | undefined>;
}

/** Cloudflare Email Service settings: the `EMAIL` binding and the shared sender. */
export interface CloudflareEmailConfig {
  binding: CloudflareEmailBinding;
  sender: Sender;
}

function isBinding(value: unknown): value is CloudflareEmailBinding {
  return (
    typeof value === 'object' && value !== null && typeof (value as { send?: unknown }).send === 'function'
  );
}

/** Reads the `EMAIL` binding and sender; throws MissingCredentialsError naming what is absent. */
export function cloudflareConfigFromEnv(env: ProviderEnv): CloudflareEmailConfig {
  const binding = env.EMAIL;
  const from = readVar(env, 'EMAIL_FROM');
  const missing = [...(isBinding(binding) ? [] : ['EMAIL binding']), ...(from ? [] : ['EMAIL_FROM'])];
  if (!isBinding(binding) || !from) throw new MissingCredentialsError('cloudflare', missing);
  return { binding, sender: readSender(env, from) };
}

function bindingMailbox(mailbox: Mailbox): string | { email: string; name: string } {
  return mailbox.name ? { email: mailbox.email, name: mailbox.name } : mailbox.email;
}

/**
 * Builds the binding's message. Custom headers go in `headers`; Cloudflare accepts `X-` headers and
 * a whitelist that includes `List-Unsubscribe` and `List-Unsubscribe-Post`.
 */
export function buildCloudflareMessage(
  config: CloudflareEmailConfig,
  request: SendRequest,
): CloudflareEmailMessage {
  const job = requireEmailJob(request);
  return {
    to: job.to,
    from: bindingMailbox(config.sender.from),
    subject: job.subject,
    ...(job.html ? { html: job.html } : {}),
    ...(job.text ? { text: job.text } : {}),
    ...(config.sender.replyTo ? { replyTo: bindingMailbox(config.sender.replyTo) } : {}),
    ...(job.headers.length > 0 ? { headers: Object.fromEntries(job.headers) } : {}),
  };
}

/** The sender domain is not onboarded or verified: an operator must fix the configuration. */
const CONFIG_ERROR_CODES = new Set([
  'E_SENDER_NOT_VERIFIED',
  'E_SENDER_DOMAIN_NOT_AVAILABLE',
  'E_RECIPIENT_NOT_ALLOWED',
]);

/** The message itself is invalid: sending it again cannot succeed. */
const INVALID_MESSAGE_CODES = new Set([
  'E_VALIDATION_ERROR',
  'E_FIELD_MISSING',
  'E_TOO_MANY_RECIPIENTS',
  'E_CONTENT_TOO_LARGE',
  'E_HEADER_NOT_ALLOWED',
  'E_HEADER_USE_API_FIELD',
  'E_HEADER_VALUE_INVALID',
  'E_HEADER_VALUE_TOO_LONG',
  'E_HEADER_NAME_INVALID',
  'E_HEADERS_TOO_LARGE',
  'E_HEADERS_TOO_MANY',
]);

/**
 * Maps an error thrown by `send()` (an Error with a `code`) to a SendResult. Anything not documented
 * as permanent (rate limits, daily limit, internal errors, delivery failures, unknown) is retryable.
 */
export function interpretCloudflareError(error: unknown): SendResult {
  const code =
    typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (!code) return retryable(shortReason('send_email binding error', message), undefined, 'binding_error');
  const reason = shortReason(code, message);
  if (CONFIG_ERROR_CODES.has(code)) return permanent(reason, code, { configError: true });
  // Suppressed: the address bounced or the recipient reported spam, so Cloudflare will not send to it.
  if (code === 'E_RECIPIENT_SUPPRESSED') return permanent(reason, code, { invalidAddress: true });
  if (INVALID_MESSAGE_CODES.has(code)) return permanent(reason, code);
  return retryable(reason, undefined, code);
}

/** The Cloudflare Email Service provider definition (`send_email` binding named `EMAIL`). */
export const cloudflare: ProviderDefinition = {
  name: 'cloudflare',
  channel: 'email',
  limits: CLOUDFLARE_EMAIL_LIMITS,
  create(env: ProviderEnv, _deps: ProviderDeps): Provider {
    const config = cloudflareConfigFromEnv(env);
    return {
      name: 'cloudflare',
      channel: 'email',
      async send(request: SendRequest): Promise<SendResult> {
        const job = toEmailJob(request);
        if (isRefused(job)) return job;
        try {
          const result = await config.binding.send(buildCloudflareMessage(config, request));
          return sent(typeof result?.messageId === 'string' ? result.messageId : undefined);
        } catch (error) {
          return interpretCloudflareError(error);
        }
      },
    };
  },
};
