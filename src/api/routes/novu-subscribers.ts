import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { releaseIdempotencyKey } from '../../services/novu/idempotency';
import { bcp47 } from '../../services/novu/mapping';
import { type SubscriberFields, subscriberView, upsertSubscriber } from '../../services/novu/subscribers';
import { validationError } from '../shared/errors';
import { ContactInputSchema, IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';
import { NovuCreateSubscriberSchema, NovuSubscriberResponseSchema } from './novu-schemas';
import {
  failIfExistsQuery,
  IdempotencyHeaders,
  NOVU_AUTH,
  NOVU_TAG,
  NovuErrorSchema,
  novuConflict,
  novuErrorResponses,
  novuSecurity,
  underIdempotencyKey,
} from './novu-shared';

/*
 * Novu's subscribers: POST /v2/subscribers creates or updates the Herald contact with the same id
 * (services/novu/subscribers.ts says what is kept and what is not).
 */

const createSubscriber = createRoute({
  method: 'post',
  path: '/v2/subscribers',
  operationId: 'upsertNovuSubscriber',
  tags: [NOVU_TAG],
  summary: 'Novu: create or update a subscriber (a Herald contact)',
  description:
    'Writes the contact `subscriberId`: `email`, `phone` (E.164), `locale` and `timezone` when the body carries them (null clears one); the contact’s device tokens and channels are kept. `firstName`, `lastName`, `avatar` and `data` are accepted and not stored. With `failIfExists=true` an existing subscriber is a 409 carrying it.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: {
    headers: IdempotencyHeaders,
    query: failIfExistsQuery('subscriber'),
    body: jsonBody(NovuCreateSubscriberSchema),
  },
  responses: {
    201: {
      description: 'The subscriber as stored',
      content: { 'application/json': { schema: z.object({ data: NovuSubscriberResponseSchema }) } },
    },
    409: {
      description: '`failIfExists=true` and the subscriber exists: Novu’s error with the subscriber’s fields',
      content: {
        'application/json': { schema: z.intersection(NovuErrorSchema, NovuSubscriberResponseSchema) },
      },
    },
    ...novuErrorResponses({
      400: true,
      401: true,
      403: true,
      413: true,
      415: true,
      422: 'Validation failed (`errors` names each field), or the idempotency-key was used with another body',
      429: true,
      503: true,
    }),
  },
});

/** The body's contact fields, as Herald validates them: only those the body carries. */
const SubscriberBodySchema = z.object({
  subscriberId: IdSchema,
  email: ContactInputSchema.shape.email,
  phone: ContactInputSchema.shape.phone,
  locale: ContactInputSchema.shape.locale,
  timezone: ContactInputSchema.shape.timezone,
});

type Body = z.infer<typeof NovuCreateSubscriberSchema>;

function heraldFields(body: Body) {
  return {
    subscriberId: body.subscriberId,
    ...(body.email !== undefined ? { email: body.email } : {}),
    ...(body.phone !== undefined ? { phone: body.phone } : {}),
    ...(body.locale !== undefined ? { locale: body.locale === null ? null : bcp47(body.locale) } : {}),
    ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
  };
}

/** Novu's subscribers API (scope contacts:write). */
export const novuSubscriberRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
  createSubscriber,
  async (c) => {
    const body = c.req.valid('json');
    const parsed = SubscriberBodySchema.safeParse(heraldFields(body));
    if (!parsed.success) return validationError(c, parsed.error) as never; // the envelope; novuErrors reshapes it
    const { subscriberId, ...fields } = parsed.data;
    const failIfExists = c.req.valid('query').failIfExists === 'true';
    const outcome = await underIdempotencyKey(c, body, () =>
      upsertSubscriber(c.var.services, subscriberId, fields as SubscriberFields, failIfExists),
    );
    if ('exists' in outcome) {
      await releaseIdempotencyKey(c.var.services); // nothing was written
      const conflict = novuConflict(c, 'subscriber_exists', `subscriber "${subscriberId}" already exists`);
      return c.json({ ...conflict, ...subscriberView(outcome.exists) }, 409);
    }
    return c.json({ data: subscriberView(outcome.contact) }, 201);
  },
);
