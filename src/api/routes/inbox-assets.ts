import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { html } from 'hono/html';
import { INBOX_JS } from '../../inbox-client/bundle.generated';
import { toBase64Url } from '../../lib/encoding';
import { errorResponse } from '../shared/errors';
import { setPageHeaders } from '../shared/page-headers';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';

/** Five minutes: a deploy reaches browsers soon; the ETag makes the revalidation cheap. */
const SCRIPT_CACHE = 'public, max-age=300';

/** The longest token the demo page takes (a real one is far shorter). */
const MAX_DEMO_TOKEN = 4096;

const inboxScript = createRoute({
  method: 'get',
  path: '/inbox.js',
  operationId: 'getInboxScript',
  tags: ['inbox'],
  summary:
    'The in-app inbox for browsers: an ES module defining <herald-inbox> and exporting the headless client (HeraldInbox)',
  security: [], // public: the script holds no secret, the inbox token is given to it in the page
  responses: {
    200: {
      description: 'The script (application/javascript), cacheable for 5 minutes, with an ETag',
      content: { 'application/javascript': { schema: z.string() } },
    },
    304: { description: 'Not modified (If-None-Match named the current ETag)' },
  },
});

const demoPage = createRoute({
  method: 'get',
  path: '/inbox/demo',
  hide: true,
  request: { query: z.object({ token: z.string().optional() }) },
  responses: {
    200: { description: 'A page with <herald-inbox> for the token (ENVIRONMENT=development only)' },
    404: { description: 'Not development' },
  },
});

let etag: Promise<string> | undefined;

/** The script's ETag: its SHA-256, computed once per isolate (not at global scope, where crypto may not run). */
function scriptEtag(): Promise<string> {
  etag ??= crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(INBOX_JS))
    .then((digest) => `"${toBase64Url(new Uint8Array(digest).slice(0, 18))}"`);
  return etag;
}

/** Whether an If-None-Match header names this ETag (or `*`); weak and strong compare alike. */
function matches(ifNoneMatch: string | undefined, tag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((candidate) => {
    const value = candidate.trim().replace(/^W\//, '');
    return value === '*' || value === tag;
  });
}

/**
 * The demo page's policy: this origin's script only (no inline script), the API and the live
 * connection on this origin, avatars from https, nothing framed, no forms.
 */
function demoCsp(requestUrl: string): string {
  const url = new URL(requestUrl);
  const socket = `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}`;
  return [
    "default-src 'none'",
    "script-src 'self'",
    `connect-src 'self' ${socket}`,
    "img-src 'self' https: data:",
    "style-src 'unsafe-inline'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function page(c: Context<AppEnv>, token: string) {
  setPageHeaders(c, demoCsp(c.req.url));
  // `html` escapes every interpolation: the token is text in an attribute, never markup.
  return c.html(
    html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>Herald inbox demo</title>
          <script type="module" src="/inbox.js"></script>
          <style>
            body { font-family: system-ui, sans-serif; margin: 0; background: #f8fafc; color: #0f172a; }
            header { display: flex; justify-content: space-between; align-items: center; padding: 12px 24px; background: #fff; border-bottom: 1px solid #e2e8f0; }
            main { padding: 24px; max-width: 640px; line-height: 1.5; }
          </style>
        </head>
        <body>
          <header>
            <strong>Herald inbox demo</strong>
            <herald-inbox token="${token}" theme="auto"></herald-inbox>
          </header>
          <main>
            <p>
              Send this user a notification with the <code>inapp</code> channel and it appears under
              the bell. Development only.
            </p>
          </main>
        </body>
      </html>`,
  );
}

/**
 * The browser side of the in-app inbox: `GET /inbox.js` (public, cacheable, any origin may load
 * it) and, in development only, `GET /inbox/demo?token=` to try it.
 */
export const inboxAssetRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(inboxScript, async (c) => {
    const tag = await scriptEtag();
    const headers = {
      'Cache-Control': SCRIPT_CACHE,
      ETag: tag,
      'Access-Control-Allow-Origin': '*',
      Vary: 'Accept-Encoding',
    };
    if (matches(c.req.header('If-None-Match'), tag)) return c.body(null, 304, headers);
    return c.body(INBOX_JS, 200, { ...headers, 'Content-Type': 'application/javascript; charset=utf-8' });
  })
  .openapi(demoPage, (c) => {
    if (c.env.ENVIRONMENT !== 'development') {
      return errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`);
    }
    const { token } = c.req.valid('query');
    if (!token || token.length > MAX_DEMO_TOKEN) {
      return errorResponse(c, 422, 'validation_error', 'token: mint one with POST /v1/inbox/tokens');
    }
    return page(c, token);
  });
