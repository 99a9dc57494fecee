import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS } from '../../domain/channels';
import { notFound } from '../../domain/errors';
import { rotatePage } from '../../services/access/key-rotation';
import { replayDeadLetters } from '../../services/operations/dead-letters';
import { providerStatuses } from '../../services/operations/provider-status';
import { setProviderEnabled } from '../../services/operations/provider-switches';
import { runRetention } from '../../services/operations/retention';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const errors = errorResponses(KEY_ERRORS);
const bodyErrors = errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS });

const ProviderStatusSchema = z
  .object({
    name: z.string(),
    channel: z.enum(CHANNELS),
    platforms: z.array(z.string()).optional(),
    /** Listed in the channel's `<CHANNEL>_PROVIDERS`, and its position in the failover order. */
    listed: z.boolean(),
    order: z.number().nullable(),
    enabled: z.boolean(),
    /** `missing: VAR, VAR` when a credential is not set. */
    credentials: z.string(),
    circuit: z.enum(['closed', 'open', 'half-open']),
  })
  .openapi('ProviderStatus');

const listProviders = createRoute({
  method: 'get',
  path: '/v1/admin/providers',
  operationId: 'listProviders',
  tags: ['admin'],
  summary: 'Every provider per channel: listed, switched on, credentials, circuit state (this isolate)',
  security,
  responses: {
    200: {
      description: 'Providers',
      content: { 'application/json': { schema: z.object({ data: z.array(ProviderStatusSchema) }) } },
    },
    ...errors,
  },
});

const switchProvider = createRoute({
  method: 'put',
  path: '/v1/admin/providers/{name}',
  operationId: 'switchProvider',
  tags: ['admin'],
  summary: 'Switch a provider off or on without a deploy (reaches every isolate within 10 s)',
  security,
  request: {
    params: z.object({
      name: z
        .string()
        .min(1)
        .max(32)
        .openapi({ param: { name: 'name', in: 'path' }, example: 'resend' }),
    }),
    body: jsonBody(z.object({ enabled: z.boolean() }).strict()),
  },
  responses: {
    200: {
      description: 'The new state',
      content: { 'application/json': { schema: z.object({ name: z.string(), enabled: z.boolean() }) } },
    },
    ...bodyErrors,
    ...errorResponses({ 404: 'Unknown provider' }),
  },
});

const DeadLetterSchema = z
  .object({
    deliveryId: z.string(),
    channel: z.string(),
    reason: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('DeadLetter');

const listDeadLetters = createRoute({
  method: 'get',
  path: '/v1/admin/dead-letters',
  operationId: 'listDeadLetters',
  tags: ['admin'],
  summary: 'Deliveries that reached a dead-letter queue and were not replayed, newest first',
  security,
  request: {
    query: z.object({
      channel: z.enum(CHANNELS).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    }),
  },
  responses: {
    200: {
      description: 'Dead letters',
      content: { 'application/json': { schema: z.object({ data: z.array(DeadLetterSchema) }) } },
    },
    ...errorResponses({ ...KEY_ERRORS, 422: true }),
  },
});

const replay = createRoute({
  method: 'post',
  path: '/v1/admin/dead-letters/replay',
  operationId: 'replayDeadLetters',
  tags: ['admin'],
  summary: 'Re-enqueue dead letters with fresh attempts: by delivery ids, or all of a channel',
  security,
  request: {
    body: jsonBody(
      z
        .object({ ids: z.array(IdSchema).min(1).max(1000).optional(), channel: z.enum(CHANNELS).optional() })
        .strict()
        .refine((b) => b.ids || b.channel, { message: 'give ids or channel', path: ['ids'] }),
    ),
  },
  responses: {
    200: {
      description: 'What was replayed',
      content: {
        'application/json': { schema: z.object({ replayed: z.number(), ids: z.array(z.string()) }) },
      },
    },
    ...bodyErrors,
  },
});

/** Most rows one retention run through the API removes; call again while `more` is true. */
const MAX_RETAINED_PER_CALL = 50_000;

const retention = createRoute({
  method: 'post',
  path: '/v1/admin/retention/run',
  operationId: 'runRetention',
  tags: ['admin'],
  summary:
    'Archive to R2, then remove, the deliveries created before `before` (call again while `more` is true)',
  security,
  request: {
    body: jsonBody(
      z
        .object({
          before: z.iso.datetime({ offset: true }).openapi({ example: '2026-11-01T00:00:00Z' }),
        })
        .strict(),
    ),
  },
  responses: {
    200: {
      description: 'What was archived and removed',
      content: {
        'application/json': {
          schema: z.object({
            before: z.string(),
            archived: z.number(),
            removed: z.number(),
            objects: z.array(z.string()),
            more: z.boolean(),
          }),
        },
      },
    },
    ...bodyErrors,
    ...errorResponses({ 503: 'No archive bucket is bound: nothing was removed' }),
  },
});

const rotateKey = createRoute({
  method: 'post',
  path: '/v1/admin/rotate-key',
  operationId: 'rotateEncryptionKey',
  tags: ['admin'],
  summary:
    'Re-encrypt one page of personal data under the current DATA_ENCRYPTION_KEY (call until nextCursor is null)',
  security,
  request: {
    body: jsonBody(
      z
        .object({
          table: z.enum(['contacts', 'deliveries', 'user_keys']),
          cursor: z.string().max(256).default(''),
          limit: z.number().int().min(1).max(500).default(200),
        })
        .strict(),
    ),
  },
  responses: {
    200: {
      description: 'What this page rotated',
      content: {
        'application/json': {
          schema: z.object({
            table: z.string(),
            rotated: z.number(),
            unreadable: z.number(),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    ...bodyErrors,
  },
});

/** Operator routes: provider switches and dead letters. */
export const adminRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(listProviders, async (c) => {
    // A provider without platforms (the sandbox, or one whose addresses decide nothing) omits the field.
    const data = (await providerStatuses(c.var.services, Date.now())).map(({ platforms, ...status }) =>
      platforms.length > 0 ? { ...status, platforms } : status,
    );
    return c.json({ data }, 200);
  })
  .openapi(switchProvider, async (c) => {
    const { name } = c.req.valid('param');
    if (!c.var.services.registry.knows(name)) throw notFound(`provider ${name}`);
    const { enabled } = c.req.valid('json');
    await setProviderEnabled(c.var.services, name, enabled, Date.now());
    return c.json({ name, enabled }, 200);
  })
  .openapi(listDeadLetters, async (c) => {
    const { channel, limit } = c.req.valid('query');
    return c.json({ data: await c.var.services.operations.listDeadLetters(channel, limit) }, 200);
  })
  .openapi(rotateKey, async (c) => {
    const { table, cursor, limit } = c.req.valid('json');
    return c.json(await rotatePage(c.var.services, table, cursor, limit), 200);
  })
  .openapi(replay, async (c) => {
    const ids = await replayDeadLetters(c.var.services, c.req.valid('json'));
    return c.json({ replayed: ids.length, ids }, 200);
  })
  .openapi(retention, async (c) => {
    const before = Date.parse(c.req.valid('json').before);
    return c.json(await runRetention(c.var.services, before, MAX_RETAINED_PER_CALL), 200);
  });
