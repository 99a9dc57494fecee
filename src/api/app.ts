import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { secureHeaders } from 'hono/secure-headers';
import { dashboardRoutes } from '../dashboard/index';
import { newId } from '../lib/ids';
import { createServices } from '../services/container';
import { openApiConfig, registerSecuritySchemes } from './openapi';
import { adminRoutes } from './routes/admin';
import { apiKeyRoutes } from './routes/api-keys';
import { cancellationRoutes } from './routes/cancellation';
import { contactRoutes } from './routes/contacts';
import { digestRoutes } from './routes/digests';
import { inboxClientRoutes, inboxCors } from './routes/inbox';
import { inboxAdminRoutes } from './routes/inbox-admin';
import { inboxAssetRoutes } from './routes/inbox-assets';
import { metricsRoutes } from './routes/metrics';
import { notificationRoutes } from './routes/notifications';
import { NOVU_PATHS, novuErrors, novuRoutes } from './routes/novu';
import { outboxRoutes } from './routes/outbox';
import { preferenceRoutes } from './routes/preferences';
import { providerCallbackRoutes } from './routes/provider-callbacks';
import { shardRoutes } from './routes/shards';
import { templateRoutes } from './routes/templates';
import { topicRoutes } from './routes/topics';
import { trackingRoutes } from './routes/tracking';
import { unsubscribeRoutes } from './routes/unsubscribe';
import { requireApiKey } from './shared/auth';
import { errorResponse, onError } from './shared/errors';
import type { AppEnv } from './shared/types';
import { validationHook } from './shared/validation';

/** Request bodies above this are refused before they are read whole. */
export const MAX_BODY_BYTES = 100 * 1024;

const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header('X-Request-Id');
  const requestId = incoming && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : newId('req');
  c.set('requestId', requestId);
  const services = createServices(c.env);
  await services.router.refresh(services.now());
  c.set('services', services);
  c.header('X-Request-Id', requestId);
  await next();
});

/** Request bodies over MAX_BODY_BYTES are refused before they are read whole. */
const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) =>
    errorResponse(c, 413, 'payload_too_large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
});

/** Bodies are JSON only: anything else is a 415 before validation. */
const requireJson = createMiddleware<AppEnv>(async (c, next) => {
  if (['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
    const type = (c.req.header('Content-Type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      return errorResponse(
        c,
        415,
        'unsupported_media_type',
        'send the body as Content-Type: application/json',
      );
    }
  }
  await next();
});

/** Builds the Hono app: middleware, every route, the OpenAPI document and the one error handler. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use(
    '*',
    secureHeaders({
      strictTransportSecurity: 'max-age=63072000; includeSubDomains; preload',
      xFrameOptions: 'DENY',
    }),
  );
  app.use('*', requestContext);
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.route('/', unsubscribeRoutes);
  app.route('/', trackingRoutes);
  app.route('/', providerCallbackRoutes); // before the /v1/* middleware: signed by providers, form or JSON, no API key
  // The inbox's client routes take an end user's inbox token, not an API key: before /v1/* too.
  app.use('/v1/inbox/*', inboxCors);
  app.use('/v1/inbox/items/*', async (c, next) => {
    // Marking one item takes no body; a body there, or on a batch, must be JSON.
    const empty = c.req.header('Content-Length') === '0' || c.req.raw.body === null;
    return empty && !c.req.path.endsWith('/batch') ? next() : requireJson(c, next);
  });
  app.use('/v1/inbox/items/*', limitBody);
  app.route('/', inboxClientRoutes);
  app.route('/', inboxAssetRoutes); // GET /inbox.js (the element), GET /inbox/demo (development)

  // Novu-compatible routes (routes/novu.ts): Novu-shaped errors around everything below, and the
  // /v2 ones behind the same key, JSON and size checks as /v1.
  for (const path of NOVU_PATHS) app.use(path, novuErrors);
  for (const path of NOVU_PATHS.filter((p) => p.startsWith('/v2/'))) {
    app.use(path, requireApiKey);
    app.use(path, requireJson);
    app.use(path, limitBody);
  }
  // End Novu-compatible routes.
  app.use('/v1/*', requireApiKey);
  app.use('/v1/*', requireJson);
  app.use('/v1/*', limitBody);
  app.route('/', contactRoutes);
  app.route('/', inboxAdminRoutes);
  app.route('/', digestRoutes);
  app.route('/', shardRoutes);
  app.route('/', notificationRoutes);
  app.route('/', cancellationRoutes);
  app.route('/', outboxRoutes);
  app.route('/', adminRoutes);
  app.route('/', apiKeyRoutes);
  app.route('/', metricsRoutes);
  app.route('/dashboard', dashboardRoutes);
  app.route('/', preferenceRoutes);
  app.route('/', templateRoutes);
  app.route('/', novuRoutes); // Novu-compatible routes
  app.route('/', topicRoutes);

  registerSecuritySchemes(app);
  app.doc31('/openapi.json', openApiConfig());

  app.notFound((c) => errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError(onError);
  return app;
}
