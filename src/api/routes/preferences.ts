import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS } from '../../domain/channels';
import { getPreferences, patchPreferences, replacePreferences } from '../../services/recipients/preferences';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { TypeSchema, UserIdParam } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const Clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time as HH:MM, 00:00 to 23:59');
const ChannelSwitches = z.partialRecord(z.enum(CHANNELS), z.boolean());
const TypeChoices = z.partialRecord(z.enum([...CHANNELS, 'all']), z.boolean());

const PreferencesSchema = z
  .object({
    channels: ChannelSwitches.optional().openapi({
      description: '`false` turns a channel off for every type',
      example: { sms: false },
    }),
    types: z
      .record(TypeSchema, TypeChoices)
      .refine((t) => Object.keys(t).length <= 200, 'at most 200 types')
      .optional()
      .openapi({
        description: 'Per type: a channel or `all` → true (opt in) / false (opt out)',
        example: { order_shipped: { sms: false } },
      }),
    quietHours: z
      .object({ start: Clock, end: Clock })
      .strict()
      .nullable()
      .optional()
      .openapi({
        description: "In the contact's time zone; critical notifications ignore it",
        example: { start: '22:00', end: '07:00' },
      }),
  })
  .strict()
  .openapi('Preferences');

const PreferencesOut = z.object({
  channels: ChannelSwitches,
  types: z.record(z.string(), TypeChoices),
  quietHours: z.object({ start: z.string(), end: z.string() }).nullable(),
});

const security = [{ bearerAuth: [] }];
const settings = { description: 'The settings', content: { 'application/json': { schema: PreferencesOut } } };
const readResponses = { 200: settings, ...errorResponses({ ...KEY_ERRORS, 422: true }) };
const writeResponses = {
  200: settings,
  ...errorResponses({
    ...KEY_ERRORS,
    ...BODY_ERRORS,
    422: 'Validation failed (names the field), or a required type cannot be turned off',
  }),
};

const path = '/v1/contacts/{userId}/preferences';

/** A user's notification settings: channel switches, per-type opt-in/out, quiet hours. */
export const preferenceRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(
    createRoute({
      method: 'get',
      path,
      operationId: 'getPreferences',
      tags: ['preferences'],
      summary: "A user's settings (defaults when none were set)",
      security,
      request: { params: UserIdParam },
      responses: readResponses,
    }),
    async (c) => c.json(await getPreferences(c.var.services, c.req.valid('param').userId), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path,
      operationId: 'replacePreferences',
      tags: ['preferences'],
      summary: 'Replace every setting',
      security,
      request: { params: UserIdParam, body: jsonBody(PreferencesSchema) },
      responses: writeResponses,
    }),
    async (c) =>
      c.json(await replacePreferences(c.var.services, c.req.valid('param').userId, c.req.valid('json')), 200),
  )
  .openapi(
    createRoute({
      method: 'patch',
      path,
      operationId: 'updatePreferences',
      tags: ['preferences'],
      summary: 'Change some settings (channels and types merge; quietHours null clears)',
      security,
      request: { params: UserIdParam, body: jsonBody(PreferencesSchema) },
      responses: writeResponses,
    }),
    async (c) =>
      c.json(await patchPreferences(c.var.services, c.req.valid('param').userId, c.req.valid('json')), 200),
  );
