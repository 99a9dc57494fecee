// Provider delivery callbacks, keyed by the `{provider}` of `POST /v1/webhooks/{provider}`.
import { mailgunCallback } from './mailgun';
import { postmarkCallback } from './postmark';
import { resendCallback } from './resend';
import { sendgridCallback } from './sendgrid';
import { twilioCallback } from './twilio';
import type { CallbackHandler } from './types';
import { vonageCallback } from './vonage';

export type {
  CallbackEvent,
  CallbackHandler,
  CallbackRequest,
  CallbackStatus,
  ReplayGuard,
  VerifyResult,
} from './types';
export { CallbackConfigError, REPLAY_CHECK_UNAVAILABLE } from './types';

/**
 * Each handler's config is opaque to the caller: it only ever flows from a handler's own
 * `configFromEnv` into the same handler's `verify`. Typical use:
 *
 *   const handler = callbackHandlers[provider];           // undefined: 404
 *   const config = handler?.configFromEnv(env);           // null: callbacks not configured, 404
 *   const verdict = await handler.verify(request, config, Date.now(), replayGuard);
 *   if (!verdict.ok) -> 503 for REPLAY_CHECK_UNAVAILABLE, else 401 (log verdict.reason)
 *   else handler.parse(request.body, request.headers)
 */
export const callbackHandlers: Record<string, CallbackHandler<unknown>> = {
  twilio: twilioCallback,
  sendgrid: sendgridCallback,
  resend: resendCallback,
  mailgun: mailgunCallback,
  postmark: postmarkCallback,
  vonage: vonageCallback,
};
