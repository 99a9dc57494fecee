import type { Context } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Env } from '../config/env';
import { isChannel } from '../domain/channels';
import { AppError } from '../domain/errors';
import { isId, isType } from '../domain/identifiers';
import { isStatus } from '../domain/status';
import { decodeCursor, encodeCursor } from '../lib/cursor';
import { log } from '../lib/log';
import { isAdminKey } from '../services/access/api-keys';
import type { Services } from '../services/container';
import { inboxItemsOf, inboxOf } from '../services/inbox/inbox';
import { replayDeadLetters } from '../services/operations/dead-letters';
import { openDigestsHolding } from '../services/operations/digest-admin';
import {
  backlogAlertSeconds,
  collectMetrics,
  deadLettersByChannel,
  type MetricsWindow,
  volumeOverTime,
  WINDOW_NAMES,
} from '../services/operations/metrics';
import { providerStatuses, sandboxOn } from '../services/operations/provider-status';
import { setProviderEnabled } from '../services/operations/provider-switches';
import type { OutboxEntry } from '../storage/outbox-repo';
import { DeadLettersPage } from './pages/dead-letters';
import { UserPage } from './pages/inbox';
import { LoginPage, MessagePage } from './pages/login';
import { NotificationPage } from './pages/notification';
import { type NotificationFilters, NotificationsPage } from './pages/notifications';
import { OutboxPage } from './pages/outbox';
import { OverviewPage } from './pages/overview';
import { ProvidersPage } from './pages/providers';
import {
  contentSecurityPolicy,
  endSession,
  hasSession,
  isSameOrigin,
  newNonce,
  sessionSecret,
  startSession,
} from './session';
import { Layout, type Section } from './ui/layout';

/** Reads a posted form; a malformed body (a multipart without its boundary, say) is a 400, not a 500. */
async function formOf(c: Context, all = false): Promise<Record<string, string | File | (string | File)[]>> {
  try {
    return await c.req.parseBody({ all });
  } catch {
    throw new AppError(400, 'bad_request', 'malformed form body');
  }
}

interface DashboardEnv {
  Bindings: Env;
  Variables: { requestId: string; services: Services; nonce: string };
}
type DashboardContext = Context<DashboardEnv>;

const PAGE_SIZE = 50;
const MAX_FORM_BYTES = 16 * 1024;

async function render(c: DashboardContext, element: JSX.Element, status: ContentfulStatusCode = 200) {
  return c.html(`<!doctype html>${await element}`, status);
}

function page(
  c: DashboardContext,
  section: Section,
  title: string,
  content: JSX.Element,
  flash?: { kind: 'ok' | 'error'; text: string },
) {
  return render(
    c,
    <Layout title={title} nonce={c.var.nonce} section={section} sandbox={sandboxOn(c.env)} flash={flash}>
      {content}
    </Layout>,
  );
}

function message(c: DashboardContext, status: ContentfulStatusCode, title: string, text: string) {
  return render(c, <MessagePage nonce={c.var.nonce} title={title} message={text} />, status);
}

/** Every dashboard response: a strict CSP with a fresh style nonce, never cached, never framed. */
const securityHeaders = createMiddleware<DashboardEnv>(async (c, next) => {
  const nonce = newNonce();
  c.set('nonce', nonce);
  await next();
  c.header('Content-Security-Policy', contentSecurityPolicy(nonce));
  c.header('Cache-Control', 'no-store');
  c.header('X-Frame-Options', 'DENY');
});

/** CSRF: every POST must come from a page of this origin (SameSite=Strict is the other half). */
const sameOriginPosts = createMiddleware<DashboardEnv>(async (c, next) => {
  if (c.req.method === 'POST' && !isSameOrigin(c)) {
    return message(c, 403, 'Forbidden', 'This form was not submitted from the dashboard.');
  }
  await next();
});

const requireSession = createMiddleware<DashboardEnv>(async (c, next) => {
  if (!(await hasSession(c, c.env, c.var.services.now()))) return c.redirect('/dashboard/login', 302);
  await next();
});

/** A form field as one string; absent, repeated or a file counts as missing. */
function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
}

function fields(body: Record<string, unknown>, name: string): string[] {
  const value = body[name];
  const values = Array.isArray(value) ? value : [value];
  return values.filter((v): v is string => typeof v === 'string');
}

function listFilters(query: Record<string, string>): { filters: NotificationFilters; error?: string } {
  const filters: NotificationFilters = {};
  const problems: string[] = [];
  const pick = (name: keyof NotificationFilters, valid: (v: string) => boolean, what: string) => {
    const value = query[name]?.trim();
    if (!value) return;
    if (valid(value)) filters[name] = value;
    else problems.push(`${name}: ${what}`);
  };
  pick('userId', isId, 'letters, digits and . _ : @ + - only');
  pick('type', isType, 'lower-case letters, digits, _ and - only');
  pick('status', isStatus, 'not a delivery status');
  pick('channel', isChannel, 'not a channel');
  return problems.length > 0 ? { filters, error: problems.join('; ') } : { filters };
}

function windowParam(value: string | undefined, fallback: MetricsWindow): MetricsWindow {
  return (WINDOW_NAMES as string[]).includes(value ?? '') ? (value as MetricsWindow) : fallback;
}

/** The operator dashboard under `/dashboard`: server-rendered HTML, no script, admin session only. */
export const dashboardRoutes = new Hono<DashboardEnv>();

dashboardRoutes.use('*', securityHeaders);
dashboardRoutes.use('*', sameOriginPosts);
dashboardRoutes.use(
  '*',
  bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: (c) => message(c as DashboardContext, 413, 'Too large', 'That form was too large.'),
  }),
);

dashboardRoutes.get('/login', async (c) => {
  if (await hasSession(c, c.env, c.var.services.now())) return c.redirect('/dashboard', 303);
  return render(c, <LoginPage nonce={c.var.nonce} />);
});

dashboardRoutes.post('/login', async (c) => {
  const secret = sessionSecret(c.env);
  if (!secret) {
    return message(
      c,
      503,
      'Dashboard unavailable',
      'Set the SIGNING_SECRET secret to enable dashboard sessions.',
    );
  }
  const key = field(await formOf(c), 'key') ?? '';
  if (!key || !(await isAdminKey(c.env, key))) {
    log('warn', 'dashboard.login_failed', { requestId: c.var.requestId });
    return render(c, <LoginPage nonce={c.var.nonce} error="That key is not the admin key." />, 401);
  }
  await startSession(c, secret, c.var.services.now());
  log('info', 'dashboard.login', { requestId: c.var.requestId });
  return c.redirect('/dashboard', 303);
});

dashboardRoutes.post('/logout', (c) => {
  endSession(c);
  return c.redirect('/dashboard/login', 303);
});

dashboardRoutes.use('*', requireSession);

dashboardRoutes.get('/', async (c) => {
  const window = windowParam(c.req.query('window'), '24h');
  const [metrics, series] = await Promise.all([
    collectMetrics(c.var.services, { window }),
    volumeOverTime(c.var.services, window),
  ]);
  return page(
    c,
    'overview',
    'Overview',
    <OverviewPage metrics={metrics} series={series} backlogAlertSeconds={backlogAlertSeconds(c.env)} />,
  );
});

dashboardRoutes.get('/notifications', async (c) => {
  const query = c.req.query();
  const { filters, error } = listFilters(query);
  if (error) {
    return page(
      c,
      'notifications',
      'Notifications',
      <NotificationsPage filters={filters} rows={[]} olderHref={null} error={error} />,
    );
  }
  const { deliveries } = c.var.services;
  const found = await deliveries.list({
    userId: filters.userId,
    type: filters.type,
    status: filters.status && isStatus(filters.status) ? filters.status : undefined,
    channel: filters.channel && isChannel(filters.channel) ? filters.channel : undefined,
    limit: PAGE_SIZE + 1,
    cursor: query.cursor ? decodeCursor(query.cursor) : undefined,
  });
  const shown = found.slice(0, PAGE_SIZE);
  const all = await deliveries.getDeliveries(shown.flatMap((n) => n.deliveryIds));
  const rows = shown.map((notification) => ({
    notification,
    deliveries: all.filter((d) => d.notificationId === notification.id),
  }));
  const last = shown.at(-1);
  const older =
    found.length > PAGE_SIZE && last
      ? `/dashboard/notifications?${new URLSearchParams({
          ...(filters as Record<string, string>),
          cursor: encodeCursor({ createdAt: Date.parse(last.createdAt), id: last.id }),
        })}`
      : null;
  return page(
    c,
    'notifications',
    'Notifications',
    <NotificationsPage filters={filters} rows={rows} olderHref={older} />,
  );
});

dashboardRoutes.get('/notifications/:id', async (c) => {
  const id = c.req.param('id');
  if (!isId(id)) throw new AppError(404, 'not_found', 'No such notification.');
  const { services } = c.var;
  const notification = await services.deliveries.getNotification(id);
  if (!notification) throw new AppError(404, 'not_found', 'No such notification.');
  const [deliveries, outbox] = await Promise.all([
    services.deliveries.getDeliveries(notification.deliveryIds),
    sandboxOn(c.env) ? services.outbox.list({ notificationId: id, limit: 100 }) : Promise.resolve([]),
  ]);
  // Newest capture per delivery (the list is newest first).
  const captured = new Map<string, OutboxEntry>();
  for (const entry of outbox) if (!captured.has(entry.deliveryId)) captured.set(entry.deliveryId, entry);
  const inboxItems = await inboxItemsOf(services, deliveries);
  const digests = await openDigestsHolding(services, deliveries);
  return page(
    c,
    'notifications',
    notification.id,
    <NotificationPage
      notification={notification}
      deliveries={deliveries}
      captured={captured}
      inboxItems={inboxItems}
      digests={digests}
    />,
  );
});

dashboardRoutes.get('/users/:userId', async (c) => {
  const userId = c.req.param('userId');
  if (!isId(userId)) throw new AppError(404, 'not_found', 'No such user.');
  const before = c.req.query('before');
  const page_ = await inboxOf(c.var.services, userId).feed({
    status: 'all',
    archived: 'include',
    limit: PAGE_SIZE,
    ...(before && /^inb_[0-9a-z]{1,60}$/.test(before) ? { before } : {}),
  });
  const older = page_.next
    ? `/dashboard/users/${encodeURIComponent(userId)}?${new URLSearchParams({ before: page_.next })}`
    : null;
  return page(
    c,
    'notifications',
    userId,
    <UserPage userId={userId} items={page_.items} counts={page_.counts} olderHref={older} />,
  );
});

dashboardRoutes.get('/dead-letters', async (c) => {
  const requested = c.req.query('channel') ?? '';
  const channel = isChannel(requested) ? requested : undefined;
  const [letters, everyChannel] = await Promise.all([
    c.var.services.operations.listDeadLetters(channel, 200),
    deadLettersByChannel(c.var.services),
  ]);
  const deliveries = await c.var.services.deliveries.getDeliveries(letters.map((l) => l.deliveryId));
  const byId = new Map(deliveries.map((d) => [d.id, d]));
  const rows = letters.map((l) => ({
    ...l,
    notificationId: byId.get(l.deliveryId)?.notificationId ?? null,
    userId: byId.get(l.deliveryId)?.userId ?? null,
  }));
  const replayed = Number(c.req.query('replayed'));
  const flash = Number.isInteger(replayed)
    ? replayed > 0
      ? { kind: 'ok' as const, text: `Replayed ${replayed} ${replayed === 1 ? 'delivery' : 'deliveries'}.` }
      : { kind: 'error' as const, text: 'Nothing was replayed: already replayed, or sent since.' }
    : undefined;
  return page(
    c,
    'dead-letters',
    'Dead letters',
    <DeadLettersPage rows={rows} counts={everyChannel} channel={channel} />,
    flash,
  );
});

dashboardRoutes.post('/dead-letters/replay', async (c) => {
  const body = await formOf(c, true);
  const ids = fields(body, 'id').filter(isId).slice(0, 1000);
  const channel = field(body, 'channel');
  let replayed: string[] = [];
  if (ids.length > 0) replayed = await replayDeadLetters(c.var.services, { ids });
  else if (channel && isChannel(channel)) replayed = await replayDeadLetters(c.var.services, { channel });
  else throw new AppError(422, 'validation_error', 'Choose a dead letter or a channel to replay.');
  log('info', 'dashboard.replay', { requestId: c.var.requestId, count: replayed.length });
  return c.redirect(`/dashboard/dead-letters?replayed=${replayed.length}`, 303);
});

dashboardRoutes.get('/providers', async (c) => {
  const providers = await providerStatuses(c.var.services, c.var.services.now());
  const name = c.req.query('switched');
  const state = c.req.query('enabled');
  const flash =
    name && c.var.services.registry.knows(name) && (state === 'on' || state === 'off')
      ? { kind: 'ok' as const, text: `${name} switched ${state}.` }
      : undefined;
  return page(c, 'providers', 'Providers', <ProvidersPage providers={providers} />, flash);
});

dashboardRoutes.post('/providers/:name', async (c) => {
  const name = c.req.param('name');
  if (!c.var.services.registry.knows(name)) throw new AppError(404, 'not_found', 'No such provider.');
  const enabled = field(await formOf(c), 'enabled');
  if (enabled !== 'on' && enabled !== 'off') throw new AppError(422, 'validation_error', 'Choose on or off.');
  await setProviderEnabled(c.var.services, name, enabled === 'on', c.var.services.now());
  log('info', 'dashboard.provider_switch', {
    requestId: c.var.requestId,
    provider: name,
    enabled: enabled === 'on',
  });
  return c.redirect(`/dashboard/providers?${new URLSearchParams({ switched: name, enabled })}`, 303);
});

dashboardRoutes.get('/outbox', async (c) => {
  if (!sandboxOn(c.env)) {
    throw new AppError(404, 'not_found', 'The outbox exists only while a channel uses the sandbox provider.');
  }
  const requested = c.req.query('channel') ?? '';
  const channel = isChannel(requested) ? requested : undefined;
  const entries = await c.var.services.outbox.list({ channel, limit: PAGE_SIZE });
  return page(c, 'outbox', 'Outbox', <OutboxPage entries={entries} channel={channel} />);
});

dashboardRoutes.all('*', (c) => {
  if (c.req.path === '/dashboard/') return c.redirect('/dashboard', 301);
  return message(c, 404, 'Not found', 'There is no such dashboard page.');
});

dashboardRoutes.onError((error, c) => {
  const ctx = c as DashboardContext;
  if (!ctx.var.nonce) ctx.set('nonce', newNonce());
  if (error instanceof AppError) {
    const title =
      error.status === 404
        ? 'Not found'
        : error.status === 422 || error.status === 400
          ? 'Invalid request'
          : 'Error';
    return message(ctx, error.status as ContentfulStatusCode, title, error.message);
  }
  log('error', 'dashboard.unhandled', {
    requestId: ctx.var.requestId,
    path: c.req.path,
    error: error.message,
  });
  return message(ctx, 500, 'Something went wrong', 'The error was logged. Try again in a moment.');
});
