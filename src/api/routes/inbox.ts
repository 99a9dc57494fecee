import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { cors } from 'hono/cors';
import { createMiddleware } from 'hono/factory';
import { AppError, notFound } from '../../domain/errors';
import {
  ARCHIVED_FILTERS,
  BATCH_ACTIONS,
  FEED_STATUSES,
  INBOX_ACTIONS,
  type InboxCounts,
  type InboxItem,
} from '../../domain/inbox';
import { inboxOf } from '../../services/inbox/inbox';
import { verifyInboxToken } from '../../services/inbox/tokens';
import { markInbox } from '../../services/tracking/inbox-events';
import { bearerToken } from '../shared/auth';
import { errorResponse } from '../shared/errors';
import { errorResponses } from '../shared/responses';
import { IdSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

/**
 * The inbox's client routes, called from the end user's browser or app with an inbox token (not
 * an API key): `POST /v1/inbox/tokens` mints one on the producer's server. A token opens only its
 * own user's inbox.
 */

const security = [{ inboxToken: [] }];
const errors = errorResponses({
  401: 'Missing, invalid or expired inbox token',
  403: "Another user's inbox",
  422: true,
});
/** A mark's body, when there is one, must be JSON and at most 100 KB. */
const markErrors = errorResponses({ 413: true, 415: true });

const ITEM_ID = /^inb_[0-9a-z]{1,60}$/;
export const ItemIdSchema = z.string().regex(ITEM_ID, 'an inbox item id (inb_…)');

const CountsSchema = z.object({ total: z.number(), unread: z.number(), unseen: z.number() });
export const InboxItemSchema = z
  .object({
    id: z.string(),
    deliveryId: z.string(),
    notificationId: z.string(),
    type: z.string(),
    category: z.string().nullable(),
    title: z.string(),
    body: z.string(),
    url: z.string().nullable(),
    avatar: z.string().nullable(),
    actions: z.array(z.object({ label: z.string(), url: z.string() })),
    data: z.unknown(),
    createdAt: z.string(),
    seenAt: z.string().nullable(),
    readAt: z.string().nullable(),
    archivedAt: z.string().nullable(),
  })
  .openapi('InboxItem');

/** A page of an inbox: its items, the counts and sequence number they are at, the next cursor. */
export const FeedPageSchema = z.object({
  items: z.array(InboxItemSchema),
  counts: CountsSchema,
  seq: z.number(),
  nextCursor: z.string().nullable(),
});

/** A page as the inbox object returned it, in the API's shape. */
export const feedBody = (page: {
  items: InboxItem[];
  counts: InboxCounts;
  seq: number;
  next: string | null;
}) => ({
  items: page.items,
  counts: page.counts,
  seq: page.seq,
  nextCursor: page.next,
});

/** The paths the browser calls (CORS); the token route takes an API key and is not among them. */
const CLIENT_PATHS = /^\/v1\/inbox\/(feed|counts|ws|items(\/.*)?)$/;

/** CORS for the client routes, from INBOX_ALLOWED_ORIGINS (none: same origin only). */
export const inboxCors = createMiddleware<AppEnv>(async (c, next) => {
  const origin = c.req.header('Origin');
  const allowed = (c.env.INBOX_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  // Anything else gets no CORS answer at all (a preflight falls through to a 401 or 404).
  if (!CLIENT_PATHS.test(c.req.path) || !origin || !(allowed.includes('*') || allowed.includes(origin))) {
    return next();
  }
  return cors({
    origin: (requested) => requested,
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    allowHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600,
  })(c, next);
});

/** The inbox token (Bearer; `?token=` on the WebSocket, which cannot send headers). */
const requireInboxToken = createMiddleware<AppEnv>(async (c, next) => {
  const header = bearerToken(c.req.header('Authorization'));
  const token = header ?? (c.req.path === '/v1/inbox/ws' ? (c.req.query('token') ?? null) : null);
  let grant: Awaited<ReturnType<typeof verifyInboxToken>>;
  try {
    grant = await verifyInboxToken(c.var.services, token);
  } catch (error) {
    if (error instanceof AppError && error.status === 401) {
      c.header('WWW-Authenticate', `Bearer realm="herald-inbox", error="invalid_token"`);
      return errorResponse(c, 401, error.code, error.message);
    }
    throw error;
  }
  const asked = c.req.query('userId');
  if (asked !== undefined && asked !== grant.userId) {
    throw new AppError(403, 'forbidden', "an inbox token opens only its own user's inbox");
  }
  c.set('inboxUserId', grant.userId);
  await next();
});

const UserQuery = z.object({
  userId: IdSchema.optional().openapi({ description: "The token's user (optional; another user is a 403)" }),
});

const feed = createRoute({
  method: 'get',
  path: '/v1/inbox/feed',
  operationId: 'getInboxFeed',
  tags: ['inbox'],
  summary: "The token's user's inbox, newest first",
  security,
  request: {
    query: UserQuery.extend({
      status: z.enum(FEED_STATUSES).default('all'),
      archived: z.enum(ARCHIVED_FILTERS).default('exclude'),
      category: z.string().min(1).max(64).optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: ItemIdSchema.optional(),
    }),
  },
  responses: {
    200: {
      description: 'A page of items, the counts and the sequence number they are at',
      content: {
        'application/json': {
          schema: FeedPageSchema,
        },
      },
    },
    ...errors,
  },
});

const counts = createRoute({
  method: 'get',
  path: '/v1/inbox/counts',
  operationId: 'getInboxCounts',
  tags: ['inbox'],
  summary: 'Unarchived items, unread and unseen',
  security,
  request: { query: UserQuery },
  responses: {
    200: {
      description: 'The counts and their sequence number',
      content: { 'application/json': { schema: CountsSchema.extend({ seq: z.number() }) } },
    },
    ...errors,
  },
});

const markOne = createRoute({
  method: 'post',
  path: '/v1/inbox/items/{id}/{action}',
  operationId: 'markInboxItem',
  tags: ['inbox'],
  summary: 'Mark one item (read implies seen; click implies read). A repeat changes nothing',
  security,
  request: {
    params: z.object({
      id: ItemIdSchema.openapi({ param: { name: 'id', in: 'path' } }),
      action: z.enum(INBOX_ACTIONS).openapi({ param: { name: 'action', in: 'path' } }),
    }),
  },
  responses: {
    200: {
      description: 'The item as it is now, the counts and the sequence number',
      content: {
        'application/json': {
          schema: z.object({ item: InboxItemSchema, counts: CountsSchema, seq: z.number() }),
        },
      },
    },
    ...errors,
    ...markErrors,
    ...errorResponses({ 404: 'No such item' }),
  },
});

const markMany = createRoute({
  method: 'post',
  path: '/v1/inbox/items/batch',
  operationId: 'markInboxItems',
  tags: ['inbox'],
  summary: 'Mark several items, or all of them',
  security,
  request: {
    body: jsonBody(
      z
        .object({
          ids: z.array(ItemIdSchema).min(1).max(100).optional(),
          all: z.literal(true).optional(),
          action: z.enum(BATCH_ACTIONS),
        })
        .strict()
        .refine((b) => (b.ids === undefined) !== (b.all === undefined), {
          message: 'give either ids or all: true',
          path: ['ids'],
        }),
    ),
  },
  responses: {
    200: {
      description: 'How many items changed, the counts and the sequence number',
      content: {
        'application/json': {
          schema: z.object({ changed: z.number(), counts: CountsSchema, seq: z.number() }),
        },
      },
    },
    ...errors,
    ...markErrors,
    ...errorResponses({ 400: true }),
  },
});

const userOf = (c: Context<AppEnv>) => c.var.inboxUserId;

/** The inbox client routes (token auth, CORS), mounted before the API key middleware. */
export const inboxClientRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
inboxClientRoutes.use('/v1/inbox/feed', requireInboxToken);
inboxClientRoutes.use('/v1/inbox/counts', requireInboxToken);
inboxClientRoutes.use('/v1/inbox/items/*', requireInboxToken);
inboxClientRoutes.use('/v1/inbox/ws', requireInboxToken);
inboxClientRoutes
  .openapi(feed, async (c) => {
    const { status, archived, category, limit, cursor } = c.req.valid('query');
    const page = await inboxOf(c.var.services, userOf(c)).feed({
      status,
      archived,
      limit,
      ...(category !== undefined ? { category } : {}),
      ...(cursor !== undefined ? { before: cursor } : {}),
    });
    c.header('Cache-Control', 'no-store');
    return c.json(feedBody(page), 200);
  })
  .openapi(counts, async (c) => {
    const { counts: now, seq } = await inboxOf(c.var.services, userOf(c)).counts();
    c.header('Cache-Control', 'no-store');
    return c.json({ ...now, seq }, 200);
  })
  .openapi(markMany, async (c) => {
    const { ids, action } = c.req.valid('json');
    const change = await markInbox(c.var.services, userOf(c), ids ? { ids } : { all: true }, action);
    return c.json({ changed: change.changed.length, counts: change.counts, seq: change.seq }, 200);
  })
  .openapi(markOne, async (c) => {
    const { id, action } = c.req.valid('param');
    const change = await markInbox(c.var.services, userOf(c), { ids: [id] }, action);
    const [item] = change.items;
    if (!item) throw notFound(`inbox item ${id}`);
    return c.json({ item, counts: change.counts, seq: change.seq }, 200);
  });

/**
 * `GET /v1/inbox/ws?token=&since=`: the WebSocket, handed to the user's inbox object (hibernation
 * API). Not in the OpenAPI document, which cannot describe an upgrade.
 */
inboxClientRoutes.get('/v1/inbox/ws', async (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new AppError(400, 'websocket_expected', 'connect with a WebSocket (Upgrade: websocket)');
  }
  const since = c.req.query('since');
  if (since !== undefined && !/^\d{1,15}$/.test(since)) {
    throw new AppError(422, 'validation_error', 'query.since: must be a sequence number', [
      { field: 'query.since', message: 'must be a sequence number' },
    ]);
  }
  const url = new URL('https://inbox/ws');
  if (since !== undefined) url.searchParams.set('since', since);
  const upgraded = await inboxOf(c.var.services, userOf(c)).fetch(
    new Request(url, { headers: c.req.raw.headers }),
  );
  // A fresh response: the object's has immutable headers, and the app's middleware adds some.
  return new Response(upgraded.body, {
    status: upgraded.status,
    webSocket: upgraded.webSocket,
    headers: upgraded.headers,
  });
});
