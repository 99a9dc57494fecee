import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { BUCKETS } from '../../domain/shards';
import { moveBucket, shardLayout } from '../../services/operations/bucket-move';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];

const PHASES = ['locking', 'locked', 'copied', 'moved', 'done'] as const;

const MoveSchema = z
  .object({
    bucket: z.number(),
    from: z.string(),
    to: z.string(),
    phase: z.enum(PHASES),
    cursor: z.string().nullable(),
    updatedAt: z.number(),
  })
  .openapi('BucketMove');

const layout = createRoute({
  method: 'get',
  path: '/v1/admin/shards',
  operationId: 'getShardLayout',
  tags: ['admin'],
  summary: 'Which database holds which buckets now, and the bucket moves on record',
  security,
  responses: {
    200: {
      description: 'The layout',
      content: {
        'application/json': {
          schema: z.object({
            databases: z.array(z.object({ name: z.string(), buckets: z.string(), count: z.number() })),
            moves: z.array(MoveSchema),
          }),
        },
      },
    },
    ...errorResponses(KEY_ERRORS),
  },
});

const move = createRoute({
  method: 'post',
  path: '/v1/admin/shards/move',
  operationId: 'moveShardBucket',
  tags: ['admin'],
  summary:
    'One step of moving a bucket to another database: lock, copy, switch, clean (or abort before switch); call each again while `more` is true',
  security,
  request: {
    body: jsonBody(
      z
        .object({
          bucket: z
            .number()
            .int()
            .min(0)
            .max(BUCKETS - 1),
          to: z
            .string()
            .regex(/^DB(_\d{1,2})?$/, 'a D1 binding name: DB or DB_<n>')
            .openapi({ example: 'DB_1' }),
          step: z.enum(['lock', 'copy', 'switch', 'clean', 'abort']),
        })
        .strict(),
    ),
  },
  responses: {
    200: {
      description: 'Where the move stands',
      content: {
        'application/json': {
          schema: z.object({
            bucket: z.number(),
            from: z.string(),
            to: z.string(),
            phase: z.enum(PHASES),
            more: z.boolean(),
            waitSeconds: z.number().optional(),
            rows: z.record(z.string(), z.record(z.string(), z.number())).optional(),
          }),
        },
      },
    },
    ...errorResponses({
      ...KEY_ERRORS,
      ...BODY_ERRORS,
      409: 'Another move is underway, or the step does not follow',
    }),
  },
});

export const shardRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(layout, async (c) => c.json(await shardLayout(c.var.services), 200))
  .openapi(move, async (c) => c.json(await moveBucket(c.var.services, c.req.valid('json')), 200));
