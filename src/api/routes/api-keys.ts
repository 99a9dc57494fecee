import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { createApiKey, listApiKeys, revokeApiKey } from '../../services/access/api-keys';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema, TypeSchema } from '../shared/schemas';
import { SCOPES } from '../shared/scopes';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];

const NewApiKeySchema = z
  .object({
    name: z.string().trim().min(1).max(100).openapi({ example: 'billing service' }),
    scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
    types: z
      .array(TypeSchema)
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'Only these notification types may be sent with this key' }),
    sources: z
      .array(z.string().min(1).max(256))
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'Only these sources may be sent as; a send without a source is refused' }),
    expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: 'In the future' }),
  })
  .strict()
  .openapi('NewApiKey', {
    example: { name: 'billing service', scopes: ['notifications:send'], types: ['payment_reminder'] },
  });

const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "The key's first 12 characters, to recognise it" }),
    scopes: z.array(z.string()),
    types: z.array(z.string()).nullable(),
    sources: z.array(z.string()).nullable(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable().openapi({ description: 'Recorded at most once a minute' }),
  })
  .openapi('ApiKey');

const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: 'The key: shown in this answer only, never again' }),
}).openapi('CreatedApiKey');

const create = createRoute({
  method: 'post',
  path: '/v1/admin/api-keys',
  operationId: 'createApiKey',
  tags: ['admin'],
  summary: 'Create an API key with scopes (the key is shown once)',
  security,
  request: { body: jsonBody(NewApiKeySchema) },
  responses: {
    201: { description: 'Created', content: { 'application/json': { schema: CreatedApiKeySchema } } },
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS }),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/admin/api-keys',
  operationId: 'listApiKeys',
  tags: ['admin'],
  summary: 'Every API key, newest first (never the keys themselves)',
  security,
  responses: {
    200: {
      description: 'API keys',
      content: { 'application/json': { schema: z.object({ data: z.array(ApiKeySchema) }) } },
    },
    ...errorResponses(KEY_ERRORS),
  },
});

const revoke = createRoute({
  method: 'delete',
  path: '/v1/admin/api-keys/{id}',
  operationId: 'revokeApiKey',
  tags: ['admin'],
  summary: 'Revoke an API key (every isolate refuses it within 30 s)',
  security,
  request: { params: z.object({ id: IdSchema.openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: { description: 'The revoked key', content: { 'application/json': { schema: ApiKeySchema } } },
    ...errorResponses({ ...KEY_ERRORS, 404: 'No such key', 422: true }),
  },
});

/** Admin routes for API keys: create (the only time a key is shown), list, revoke. */
export const apiKeyRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(create, async (c) => {
    const { key, apiKey } = await createApiKey(
      c.var.services.apiKeys,
      c.req.valid('json'),
      c.var.services.now(),
    );
    c.header('Cache-Control', 'no-store');
    return c.json({ ...apiKey, key }, 201);
  })
  .openapi(list, async (c) => c.json({ data: await listApiKeys(c.var.services.apiKeys) }, 200))
  .openapi(revoke, async (c) =>
    c.json(await revokeApiKey(c.var.services.apiKeys, c.req.valid('param').id, c.var.services.now()), 200),
  );
