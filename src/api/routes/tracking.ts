import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { readClickToken, readOpenToken, recordEngagement } from '../../services/tracking/opens-and-clicks';
import { ErrorSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';

/** A 1x1 transparent GIF89a (42 bytes). */
const PIXEL = Uint8Array.from(atob('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7'), (c) =>
  c.charCodeAt(0),
);

/** Public: the signed token in the path is the authority, so no security scheme applies. */
const security: [] = [];

const NO_CACHE = 'no-store, no-cache, must-revalidate, private';

const TokenParam = z.object({
  token: z.string().openapi({ param: { name: 'token', in: 'path' }, description: 'A signed tracking token' }),
});

const openPixel = createRoute({
  method: 'get',
  path: '/t/o/{token}',
  operationId: 'trackOpen',
  tags: ['tracking'],
  summary:
    'Open pixel: always a 1x1 GIF; records the first `opened` of a delivery for a valid token (repeats and HEAD write nothing)',
  security,
  request: { params: TokenParam },
  responses: {
    200: {
      description: 'A 1x1 transparent GIF, never cached',
      content: { 'image/gif': { schema: z.string().openapi({ format: 'binary' }) } },
    },
  },
});

const clickRedirect = createRoute({
  method: 'get',
  path: '/t/c/{token}',
  operationId: 'trackClick',
  tags: ['tracking'],
  summary:
    'Click redirect: 302 to the URL signed into the token; records the first `clicked` of a delivery (repeats and HEAD write nothing)',
  security,
  request: { params: TokenParam },
  responses: {
    302: {
      description: 'Redirect to the tracked link',
      headers: z.object({ Location: z.string().openapi({ description: 'The URL signed into the token' }) }),
    },
    404: {
      description: 'Not a valid tracking link',
      content: { 'application/json': { schema: ErrorSchema } },
    },
  },
});

/**
 * Records in the background when the runtime offers it, so the pixel and the redirect do not
 * wait for D1; `recordEngagement` never throws.
 */
function recordLater(c: Context<AppEnv>, work: Promise<void>): Promise<void> | undefined {
  try {
    c.executionCtx.waitUntil(work);
    return undefined;
  } catch {
    return work;
  }
}

/**
 * Link scanners and prefetchers that issue HEAD get the same answer but are not counted. GET
 * requests from security scanners (Safe Links and the like) and Apple Mail Privacy Protection are
 * counted: telling them apart from people is guesswork, so opens are an upper bound.
 */
const counts = (c: Context<AppEnv>) => c.req.method === 'GET';

/** Public tracking endpoints (no API key): the open pixel and the click redirect. */
export const trackingRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(openPixel, async (c) => {
    const { token } = c.req.valid('param');
    const deliveryId = await readOpenToken(c.var.services, token);
    if (deliveryId && counts(c))
      await recordLater(c, recordEngagement(c.var.services, { token, deliveryId }, 'opened'));
    return c.body(PIXEL, 200, {
      'Content-Type': 'image/gif',
      'Cache-Control': NO_CACHE,
      Pragma: 'no-cache',
      Expires: '0',
    });
  })
  .openapi(clickRedirect, async (c) => {
    const { token } = c.req.valid('param');
    const click = await readClickToken(c.var.services, token);
    if (!click) {
      c.header('Cache-Control', NO_CACHE);
      return c.json({ error: { code: 'not_found', message: 'not found' } }, 404);
    }
    if (counts(c))
      await recordLater(
        c,
        recordEngagement(c.var.services, { token, deliveryId: click.deliveryId }, 'clicked'),
      );
    c.header('Cache-Control', NO_CACHE);
    // The target comes from the verified token only, never from the query string.
    return c.redirect(click.url, 302);
  });
