import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { html } from 'hono/html';
import { AppError } from '../../domain/errors';
import { readUnsubscribeToken, unsubscribe } from '../../services/tracking/unsubscribe';
import { setPageHeaders } from '../shared/page-headers';
import type { AppEnv } from '../shared/types';

/** Public: the signed token in the path is the authority, so no security scheme applies. */
const security: [] = [];
const htmlPage = (description: string) => ({ description, content: { 'text/html': { schema: z.string() } } });

// No length limit here: an overlong token is simply not valid, and gets the same harmless page.
const TokenParam = z.object({ token: z.string().openapi({ param: { name: 'token', in: 'path' } }) });

const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function page(c: Context<AppEnv>, status: 200 | 404 | 409, title: string, body: ReturnType<typeof html>) {
  setPageHeaders(c, PAGE_CSP);
  return c.html(
    html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>${title}</title>
          <style>
            body { font-family: system-ui, sans-serif; background: #f8fafc; color: #0f172a; display: grid; place-items: center; min-height: 100vh; margin: 0; }
            main { background: #fff; border: 1px solid #e2e8f0; border-radius: 12px; padding: 32px; max-width: 420px; box-shadow: 0 1px 3px rgb(0 0 0 / 0.06); }
            h1 { font-size: 20px; margin: 0 0 12px; }
            p { color: #475569; line-height: 1.5; }
            form { margin: 12px 0 0; }
            button { width: 100%; padding: 10px 14px; border-radius: 8px; border: 1px solid #cbd5e1; background: #fff; font-size: 15px; cursor: pointer; }
            button.primary { background: #0f172a; color: #fff; border-color: #0f172a; }
          </style>
        </head>
        <body>
          <main>${body}</main>
        </body>
      </html>`,
    status,
  );
}

const notFoundPage = (c: Context<AppEnv>) =>
  page(
    c,
    404,
    'Link not valid',
    html`<h1>This link is not valid</h1><p>It may have been altered. Nothing was changed.</p>`,
  );

/** Reads the token, answering a bad one with the harmless 404 page. */
async function target(c: Context<AppEnv>, token: string) {
  try {
    return await readUnsubscribeToken(c.var.services, token);
  } catch (error) {
    if (error instanceof AppError && error.status === 404) return null;
    throw error;
  }
}

/** The unsubscribe page and RFC 8058 one-click endpoint (public: the signed token is the authority). */
export const unsubscribeRoutes = new OpenAPIHono<AppEnv>()
  .openapi(
    createRoute({
      method: 'get',
      path: '/u/{token}',
      operationId: 'getUnsubscribePage',
      tags: ['unsubscribe'],
      summary: 'The unsubscribe page: unsubscribe from this type, or from every message on this channel',
      security,
      request: { params: TokenParam },
      responses: {
        200: htmlPage('The page, offering this type or the whole channel'),
        404: htmlPage('Invalid link'),
        409: htmlPage('A required type (account security): it cannot be turned off'),
      },
    }),
    async (c) => {
      const { token } = c.req.valid('param');
      const found = await target(c, token);
      if (!found) return notFoundPage(c);
      const { type, channel } = found.delivery;
      if (found.required) {
        return page(
          c,
          409,
          'Required messages',
          html`<h1>These messages can't be turned off</h1><p>${type} messages are about your account's security.</p>`,
        );
      }
      const what = type.replace(/_/g, ' ');
      return page(
        c,
        200,
        'Unsubscribe',
        html`<h1>Unsubscribe</h1>
          <p>Choose what you no longer want to receive by ${channel}.</p>
          <form method="post" action="/u/${token}"><input type="hidden" name="scope" value="type" /><button class="primary" type="submit">Stop ${what} messages</button></form>
          <form method="post" action="/u/${token}"><input type="hidden" name="scope" value="channel" /><button type="submit">Stop every ${channel} message</button></form>`,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/u/{token}',
      operationId: 'unsubscribe',
      tags: ['unsubscribe'],
      summary:
        'Unsubscribe at once: RFC 8058 one-click (`List-Unsubscribe=One-Click`) or the page form (`scope=type|channel`)',
      security,
      request: { params: TokenParam },
      responses: { 200: htmlPage('Unsubscribed'), 404: htmlPage('Invalid link') },
    }),
    async (c) => {
      const { token } = c.req.valid('param');
      const found = await target(c, token);
      if (!found) return notFoundPage(c);
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const scope = form.scope === 'channel' ? 'channel' : 'type';
      await unsubscribe(c.var.services, found, scope);
      const { type, channel } = found.delivery;
      return page(
        c,
        200,
        'Unsubscribed',
        html`<h1>You're unsubscribed</h1><p>${scope === 'channel' ? `You will no longer receive ${channel} messages from us.` : `You will no longer receive ${type.replace(/_/g, ' ')} messages by ${channel}.`}</p>`,
      );
    },
  );
