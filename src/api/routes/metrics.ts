import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS, type Channel } from '../../domain/channels';
import type { CounterTotals } from '../../domain/metric-counters';
import { STATUSES } from '../../domain/status';
import {
  collectCounters,
  collectMetrics,
  type Metrics,
  WINDOW_NAMES,
} from '../../services/operations/metrics';
import { requireApiKey } from '../shared/auth';
import { errorResponses, KEY_ERRORS } from '../shared/responses';
import { TypeSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];

const MetricsQuerySchema = z.object({
  window: z.enum(WINDOW_NAMES).default('1h').openapi({ description: 'How far back to count' }),
  type: TypeSchema.optional().openapi({ description: 'Only this notification type' }),
});

const ByStatusSchema = z.record(z.string(), z.number());
const FunnelSchema = z.object({
  created: z.number(),
  queued: z.number(),
  sent: z.number(),
  delivered: z.number(),
  opened: z.number(),
  clicked: z.number(),
});
const PerChannelNumber = z.object(
  Object.fromEntries(CHANNELS.map((c) => [c, z.number()])) as Record<Channel, z.ZodNumber>,
);

const MetricsSchema = z
  .object({
    window: z.enum(WINDOW_NAMES),
    windowSeconds: z.number(),
    from: z.string(),
    to: z.string(),
    type: z.string().nullable(),
    acceptedInWindow: z.number().openapi({ description: 'Notifications accepted in the window' }),
    queuedNow: z.number().openapi({ description: 'Deliveries created, queued or deferred now' }),
    deliveries: z.array(
      z.object({ channel: z.enum(CHANNELS), type: z.string(), status: z.enum(STATUSES), count: z.number() }),
    ),
    channels: z.record(
      z.enum(CHANNELS),
      z.object({
        total: z.number(),
        byStatus: ByStatusSchema,
        funnel: FunnelSchema,
        openRate: z.number().nullable().openapi({
          description: 'Email only: deliveries opened or clicked / deliveries sent; null elsewhere',
        }),
        clickRate: z.number().nullable().openapi({ description: 'Deliveries clicked / deliveries sent' }),
      }),
    ),
    types: z.record(z.string(), z.object({ total: z.number(), byStatus: ByStatusSchema })),
    funnel: FunnelSchema,
    backlog: z.object({
      total: z.number(),
      byChannel: PerChannelNumber,
      byStatus: z.object({ created: z.number(), queued: z.number(), deferred: z.number() }),
      oldestQueuedSeconds: z.number(),
    }),
    deadLetters: z.object({ total: z.number(), byChannel: PerChannelNumber }),
    latency: z.object({
      count: z.number(),
      sumSeconds: z.number(),
      p50Seconds: z.number().nullable(),
      p95Seconds: z.number().nullable(),
    }),
  })
  .openapi('Metrics');

const getMetrics = createRoute({
  method: 'get',
  path: '/v1/metrics',
  operationId: 'getMetrics',
  tags: ['operations'],
  summary: 'Delivery counts, backlog, dead letters, engagement rates and send latency for a window',
  description:
    'Counts cover deliveries created in the window (grouped by channel, type and status). The backlog and dead letters are as of now. Open rate is email only: opened-or-clicked / sent; click rate is clicked / sent. Latency runs from when a delivery was due to when it was sent, for deliveries sent in the window (exact nearest-rank percentiles computed in D1).',
  security,
  request: { query: MetricsQuerySchema },
  responses: {
    200: { description: 'Metrics', content: { 'application/json': { schema: MetricsSchema } } },
    ...errorResponses({ ...KEY_ERRORS, 422: true }),
  },
});

const getPrometheus = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getPrometheusMetrics',
  tags: ['operations'],
  summary: 'The same metrics in the Prometheus text exposition format (version 0.0.4)',
  security,
  request: { query: MetricsQuerySchema },
  responses: {
    200: {
      description: 'Prometheus text format',
      content: { 'text/plain': { schema: z.string() } },
    },
    ...errorResponses({ ...KEY_ERRORS, 422: true }),
  },
});

/** Escapes a label value as the exposition format requires: backslash, double quote, line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

type Labels = Record<string, string>;

/** Writes metric families: one HELP and TYPE line each, then its samples. */
class Exposition {
  private readonly lines: string[] = [];

  family(
    name: string,
    type: 'gauge' | 'summary' | 'counter',
    help: string,
    samples: { labels?: Labels; value: number; suffix?: string }[],
  ): this {
    // HELP text escapes only backslash and line feed.
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    this.lines.push(`# TYPE ${name} ${type}`);
    for (const { labels = {}, value, suffix = '' } of samples) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
      this.lines.push(`${name}${suffix}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
    }
    return this;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/**
 * The metrics as Prometheus text: gauges over the window and the latency summary, then the
 * counters (since the deployment's first count, never reset, whatever the window).
 */
export function toPrometheus(m: Metrics, counters: CounterTotals = NO_COUNTERS): string {
  const out = new Exposition();
  out.family('herald_window_seconds', 'gauge', 'Length of the window the other counts cover.', [
    { value: m.windowSeconds },
  ]);
  out.family('herald_accepted_notifications', 'gauge', 'Notifications accepted in the window.', [
    { value: m.acceptedInWindow },
  ]);
  out.family(
    'herald_deliveries',
    'gauge',
    'Deliveries created in the window, by channel, type and current status.',
    m.deliveries.map((d) => ({
      labels: { channel: d.channel, type: d.type, status: d.status },
      value: d.count,
    })),
  );
  out.family(
    'herald_funnel',
    'gauge',
    'Deliveries created in the window that reached each stage (created, queued, sent, delivered, opened, clicked).',
    CHANNELS.flatMap((channel) =>
      Object.entries(m.channels[channel].funnel).map(([stage, value]) => ({
        labels: { channel, stage },
        value,
      })),
    ),
  );
  out.family(
    'herald_open_rate',
    'gauge',
    'Email deliveries opened or clicked / email deliveries sent, in the window.',
    CHANNELS.flatMap((channel) => {
      const rate = m.channels[channel].openRate;
      return rate === null ? [] : [{ labels: { channel }, value: rate }];
    }),
  );
  out.family(
    'herald_click_rate',
    'gauge',
    'Deliveries clicked / deliveries sent, in the window.',
    CHANNELS.flatMap((channel) => {
      const rate = m.channels[channel].clickRate;
      return rate === null ? [] : [{ labels: { channel }, value: rate }];
    }),
  );
  out.family(
    'herald_queue_backlog',
    'gauge',
    'Deliveries waiting now (created, queued or deferred), by channel.',
    CHANNELS.map((channel) => ({ labels: { channel }, value: m.backlog.byChannel[channel] })),
  );
  out.family(
    'herald_oldest_queued_seconds',
    'gauge',
    'Seconds the oldest due created or queued delivery has waited; 0 when none waits.',
    [{ value: m.backlog.oldestQueuedSeconds }],
  );
  out.family(
    'herald_dead_letters',
    'gauge',
    'Dead letters not replayed, by channel.',
    CHANNELS.map((channel) => ({ labels: { channel }, value: m.deadLetters.byChannel[channel] })),
  );
  const { latency } = m;
  out.family(
    'herald_send_latency_seconds',
    'summary',
    'Seconds from due to sent, for deliveries sent in the window.',
    [
      ...(latency.p50Seconds === null ? [] : [{ labels: { quantile: '0.5' }, value: latency.p50Seconds }]),
      ...(latency.p95Seconds === null ? [] : [{ labels: { quantile: '0.95' }, value: latency.p95Seconds }]),
      { suffix: '_sum', value: latency.sumSeconds },
      { suffix: '_count', value: latency.count },
    ],
  );
  addCounters(out, counters);
  return out.toString();
}

const NO_COUNTERS: CounterTotals = { deliveries: [], accepted: [], providerErrors: [] };

/** The counter families: monotonic, so `rate()` and `increase()` apply (names end in `_total`). */
function addCounters(out: Exposition, counters: CounterTotals): void {
  out.family(
    'herald_deliveries_total',
    'counter',
    'Status changes of deliveries, by channel, type and the status entered (created counts every delivery written).',
    counters.deliveries.map(({ value, ...labels }) => ({ labels, value })),
  );
  out.family(
    'herald_notifications_accepted_total',
    'counter',
    'Notifications accepted, by type.',
    counters.accepted.map(({ value, ...labels }) => ({ labels, value })),
  );
  out.family(
    'herald_provider_errors_total',
    'counter',
    'Provider answers that were errors, by channel, provider and class (retryable, permanent, unknown: no answer after the request left).',
    counters.providerErrors.map(({ value, ...labels }) => ({ labels, value })),
  );
}

/** `GET /v1/metrics` (JSON) and `GET /metrics` (Prometheus), both behind the admin key. */
export const metricsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
metricsRoutes.use('/metrics', requireApiKey);
metricsRoutes
  .openapi(getMetrics, async (c) => {
    const metrics = await collectMetrics(c.var.services, c.req.valid('query'));
    c.header('Cache-Control', 'no-store');
    return c.json(metrics as z.infer<typeof MetricsSchema>, 200);
  })
  .openapi(getPrometheus, async (c) => {
    const query = c.req.valid('query');
    const [metrics, counters] = await Promise.all([
      collectMetrics(c.var.services, query),
      collectCounters(c.var.services, query.type),
    ]);
    c.header('Cache-Control', 'no-store');
    return c.text(toPrometheus(metrics, counters), 200, {
      'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
    });
  });
