import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { receiveCallback } from '../../services/tracking/provider-callbacks';
import { errorResponse } from '../shared/errors';
import { errorContent } from '../shared/responses';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';

/** Providers batch events (SendGrid posts up to ~1,000 per request), so this is above the API's 100 KB. */
export const MAX_CALLBACK_BYTES = 1024 * 1024;

const providerCallback = createRoute({
  method: 'post',
  path: '/v1/webhooks/{provider}',
  operationId: 'receiveProviderCallback',
  tags: ['webhooks'],
  summary: 'Delivery callbacks from providers (signed by the provider; no API key)',
  description:
    'Providers: twilio, vonage (SMS); sendgrid, resend, mailgun, postmark (email). The body is read ' +
    'raw (form-encoded or JSON, as the provider sends it) and verified with the provider’s ' +
    'signature scheme before it is parsed.',
  security: [], // the provider's signature is the authority
  request: {
    params: z.object({
      provider: z.string().openapi({ param: { name: 'provider', in: 'path' }, example: 'sendgrid' }),
    }),
  },
  responses: {
    200: {
      description: 'Verified and recorded',
      content: { 'application/json': { schema: z.object({ received: z.number().int() }) } },
    },
    401: { description: 'Signature, credentials or timestamp refused, or replayed', content: errorContent },
    404: { description: 'Unknown provider, or its callbacks are not configured', content: errorContent },
    413: { description: `Body over ${MAX_CALLBACK_BYTES} bytes`, content: errorContent },
    503: {
      description: 'Replay check or configuration unavailable: the provider retries',
      content: errorContent,
    },
  },
});

/**
 * Provider callbacks. Mounted before the `/v1/*` middleware, so neither the API key nor the
 * JSON-only rule applies (providers can send neither); authenticity is the provider's signature.
 */
export const providerCallbackRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

providerCallbackRoutes.use(
  '/v1/webhooks/*',
  bodyLimit({
    maxSize: MAX_CALLBACK_BYTES,
    onError: (c) =>
      errorResponse(
        c,
        413,
        'payload_too_large',
        `callback bodies are limited to ${MAX_CALLBACK_BYTES} bytes`,
      ),
  }),
);

providerCallbackRoutes.openapi(providerCallback, async (c) => {
  // The raw text, exactly as signed: never re-serialised before verification. (Decoded by hand:
  // workerd warns when .text() reads a form body.)
  const body = new TextDecoder().decode(await c.req.arrayBuffer());
  const summary = await receiveCallback(c.var.services, c.req.valid('param').provider, {
    url: c.req.url,
    method: c.req.method,
    headers: c.req.raw.headers,
    body,
  });
  return c.json({ received: summary.received }, 200);
});
