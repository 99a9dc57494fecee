import type { Env } from '../../config/env';
import { CHANNELS, type Channel } from '../../domain/channels';
import type { CounterTotals } from '../../domain/metric-counters';
import type { DeliveryStatus } from '../../domain/status';
import { log } from '../../lib/log';
import type { BacklogRow, DeadLetterCountRow } from '../../storage/stats-repo';
import type { Services } from '../container';
import { raiseAlert } from './alerts';

/** The windows `/v1/metrics` and the dashboard offer, in seconds. */
export const METRICS_WINDOWS = {
  '5m': 300,
  '15m': 900,
  '1h': 3600,
  '6h': 6 * 3600,
  '24h': 24 * 3600,
  '7d': 7 * 24 * 3600,
} as const;
export type MetricsWindow = keyof typeof METRICS_WINDOWS;
export const WINDOW_NAMES = Object.keys(METRICS_WINDOWS) as [MetricsWindow, ...MetricsWindow[]];

/**
 * Open deliveries created longer ago than this are not counted in the backlog: the same horizon
 * as the sweeper's wide pass, and it bounds the primary-key range every read scans.
 */
export const BACKLOG_LOOKBACK_MS = 48 * 3600_000;
/** A delivery sent in the window counts in the latency if it was created at most this much earlier. */
export const LATENCY_LOOKBACK_MS = 6 * 3600_000;
/** The minute cron scans this far back; once an hour it scans the whole backlog horizon. */
const CRON_BACKLOG_LOOKBACK_MS = 2 * 3600_000;
const CRON_PERIOD_MS = 60_000;
export const DEFAULT_BACKLOG_ALERT_SECONDS = 300;

/** Deliveries that reached each stage; a later stage implies the earlier ones. */
export interface Funnel {
  created: number;
  queued: number;
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
}

export interface ChannelMetrics {
  total: number;
  byStatus: Partial<Record<DeliveryStatus, number>>;
  funnel: Funnel;
  /**
   * Email only: deliveries opened (or clicked, which proves an open) / deliveries sent. Other
   * channels have no open tracking, so null; also null when nothing was sent.
   */
  openRate: number | null;
  /** Deliveries clicked / deliveries sent, every channel; null when nothing was sent. */
  clickRate: number | null;
}

/** What `GET /v1/metrics` answers. */
export interface Metrics {
  window: MetricsWindow;
  windowSeconds: number;
  from: string;
  to: string;
  /** The notification type the numbers are limited to, or null for all. */
  type: string | null;
  /** Notifications accepted in the window (events in). */
  acceptedInWindow: number;
  /** Deliveries waiting now: `created`, `queued` or `deferred`. */
  queuedNow: number;
  /** Deliveries created in the window, per channel, type and status. */
  deliveries: { channel: Channel; type: string; status: DeliveryStatus; count: number }[];
  channels: Record<Channel, ChannelMetrics>;
  types: Record<string, { total: number; byStatus: Partial<Record<DeliveryStatus, number>> }>;
  funnel: Funnel;
  backlog: {
    total: number;
    byChannel: Record<Channel, number>;
    byStatus: { created: number; queued: number; deferred: number };
    /** Seconds the oldest due `created`/`queued` delivery has waited; 0 when none waits. */
    oldestQueuedSeconds: number;
  };
  deadLetters: { total: number; byChannel: Record<Channel, number> };
  /** Seconds from due (created, or `sendAt`) to sent, for deliveries sent in the window. */
  latency: { count: number; sumSeconds: number; p50Seconds: number | null; p95Seconds: number | null };
}

const emptyFunnel = (): Funnel => ({ created: 0, queued: 0, sent: 0, delivered: 0, opened: 0, clicked: 0 });
const perChannel = <T>(make: () => T): Record<Channel, T> =>
  Object.fromEntries(CHANNELS.map((c) => [c, make()])) as Record<Channel, T>;
const ratio = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

/**
 * The monotonic counters (Prometheus `_total`s) summed over every database, optionally of one
 * type. They are written with the changes they count and never removed, so they only grow.
 */
export function collectCounters(services: Services, type?: string): Promise<CounterTotals> {
  return services.counters.totals(type);
}

/** Reads every metric for a window (optionally one notification type) in one D1 round trip. */
export async function collectMetrics(
  services: Services,
  options: { window: MetricsWindow; type?: string },
): Promise<Metrics> {
  const now = services.now();
  const windowSeconds = METRICS_WINDOWS[options.window];
  const fromMs = now - windowSeconds * 1000;
  const snapshot = await services.stats.snapshot({
    fromMs,
    nowMs: now,
    type: options.type,
    backlogLookbackMs: BACKLOG_LOOKBACK_MS,
    latencyLookbackMs: LATENCY_LOOKBACK_MS,
    deadLettersSinceMs: now,
  });

  const channels = perChannel<ChannelMetrics>(() => ({
    total: 0,
    byStatus: {},
    funnel: emptyFunnel(),
    openRate: null,
    clickRate: null,
  }));
  const types: Metrics['types'] = {};
  const funnel = emptyFunnel();
  for (const row of snapshot.statusCounts) {
    const channel = channels[row.channel];
    if (!channel) continue;
    channel.total += row.count;
    channel.byStatus[row.status] = (channel.byStatus[row.status] ?? 0) + row.count;
    const type = types[row.type] ?? { total: 0, byStatus: {} };
    type.total += row.count;
    type.byStatus[row.status] = (type.byStatus[row.status] ?? 0) + row.count;
    types[row.type] = type;
    for (const target of [channel.funnel, funnel]) {
      target.created += row.count;
      target.queued += row.queued;
      target.sent += row.sent;
      target.delivered += row.delivered;
      target.opened += row.opened;
      target.clicked += row.clicked;
    }
  }
  for (const [name, channel] of Object.entries(channels)) {
    channel.openRate = name === 'email' ? ratio(channel.funnel.opened, channel.funnel.sent) : null;
    channel.clickRate = ratio(channel.funnel.clicked, channel.funnel.sent);
  }

  const backlog = summariseBacklog(snapshot.backlog, now);
  const deadLetters = summariseDeadLetters(snapshot.deadLetters);
  const { latency } = snapshot;
  return {
    window: options.window,
    windowSeconds,
    from: new Date(fromMs).toISOString(),
    to: new Date(now).toISOString(),
    type: options.type ?? null,
    acceptedInWindow: snapshot.accepted,
    queuedNow: backlog.total,
    deliveries: snapshot.statusCounts.map(({ channel, type, status, count }) => ({
      channel,
      type,
      status,
      count,
    })),
    channels,
    types,
    funnel,
    backlog,
    deadLetters: { total: deadLetters.total, byChannel: deadLetters.byChannel },
    latency: {
      count: latency.count,
      sumSeconds: latency.sumMs / 1000,
      p50Seconds: latency.p50Ms === null ? null : latency.p50Ms / 1000,
      p95Seconds: latency.p95Ms === null ? null : latency.p95Ms / 1000,
    },
  };
}

function summariseBacklog(rows: readonly BacklogRow[], now: number): Metrics['backlog'] {
  const byChannel = perChannel(() => 0);
  const byStatus = { created: 0, queued: 0, deferred: 0 };
  let total = 0;
  let oldest: number | null = null;
  for (const row of rows) {
    total += row.count;
    byChannel[row.channel] = (byChannel[row.channel] ?? 0) + row.count;
    byStatus[row.status] += row.count;
    if (row.oldestDueAt !== null && (oldest === null || row.oldestDueAt < oldest)) oldest = row.oldestDueAt;
  }
  const oldestQueuedSeconds = oldest === null ? 0 : Math.max(0, Math.floor((now - oldest) / 1000));
  return { total, byChannel, byStatus, oldestQueuedSeconds };
}

function summariseDeadLetters(rows: readonly DeadLetterCountRow[]) {
  const byChannel = perChannel(() => 0);
  let total = 0;
  let recent = 0;
  for (const row of rows) {
    byChannel[row.channel] = row.count;
    total += row.count;
    recent += row.recent;
  }
  return { total, recent, byChannel };
}

/** Dead letters not replayed, per channel (every channel present). */
export async function deadLettersByChannel(services: Services): Promise<Record<Channel, number>> {
  return summariseDeadLetters(await services.stats.deadLetters()).byChannel;
}

/** How the dashboard's volume chart cuts each window into bars. */
export const VOLUME_BUCKETS: Record<MetricsWindow, { bucketSeconds: number; buckets: number }> = {
  '5m': { bucketSeconds: 30, buckets: 10 },
  '15m': { bucketSeconds: 60, buckets: 15 },
  '1h': { bucketSeconds: 300, buckets: 12 },
  '6h': { bucketSeconds: 900, buckets: 24 },
  '24h': { bucketSeconds: 3600, buckets: 24 },
  '7d': { bucketSeconds: 6 * 3600, buckets: 28 },
};

export interface VolumeSeries {
  fromMs: number;
  bucketSeconds: number;
  /** One entry per bucket, oldest first: deliveries created per channel. */
  buckets: { startMs: number; counts: Record<Channel, number> }[];
}

/** Deliveries created per channel over the window, in equal buckets aligned to the bucket size. */
export async function volumeOverTime(services: Services, window: MetricsWindow): Promise<VolumeSeries> {
  const { bucketSeconds, buckets } = VOLUME_BUCKETS[window];
  const bucketMs = bucketSeconds * 1000;
  // Aligned buckets keep bars stable between reloads; the last one is the current, partial bucket.
  const fromMs = (Math.floor(services.now() / bucketMs) - (buckets - 1)) * bucketMs;
  const rows = await services.stats.volume(fromMs, bucketMs);
  const series = Array.from({ length: buckets }, (_, i) => ({
    startMs: fromMs + i * bucketMs,
    counts: perChannel(() => 0),
  }));
  for (const row of rows) {
    const bucket = series[row.bucket];
    if (bucket && row.channel in bucket.counts) bucket.counts[row.channel] += row.count;
  }
  return { fromMs, bucketSeconds, buckets: series };
}

/** One status change, as the outcome path knows it. */
export interface StatusChange {
  deliveryId: string;
  notificationId: string;
  channel: Channel;
  type: string;
  status: DeliveryStatus;
  provider?: string | null;
}

/**
 * Writes one Analytics Engine data point per status change when the `ANALYTICS` binding exists
 * (free-form queries over months, without reading D1). Never throws: metrics must not fail a
 * delivery. Layout: index = type (the sampling key); blobs = channel, type, status, provider,
 * delivery id, notification id; doubles = [1] (a count, so SUM(_sample_interval * double1) works).
 */
export function recordStatusChange(env: Pick<Env, 'ANALYTICS'>, change: StatusChange): void {
  const dataset = env.ANALYTICS;
  if (!dataset) return;
  try {
    dataset.writeDataPoint({
      indexes: [change.type],
      blobs: [
        change.channel,
        change.type,
        change.status,
        change.provider ?? '',
        change.deliveryId,
        change.notificationId,
      ],
      doubles: [1],
    });
  } catch (error) {
    log('warn', 'analytics.write_failed', { deliveryId: change.deliveryId, error: String(error) });
  }
}

/** What the minute cron's backlog check saw. */
export interface BacklogCheck {
  oldestQueuedSeconds: number;
  queued: number;
  newDeadLetters: number;
  deadLetters: number;
  alerts: string[];
}

/** `BACKLOG_ALERT_SECONDS`, or 300 when unset or not a positive number. */
export function backlogAlertSeconds(env: Env): number {
  const raw = Number(env.BACKLOG_ALERT_SECONDS);
  return Number.isFinite(raw) && raw > 0 ? raw : DEFAULT_BACKLOG_ALERT_SECONDS;
}

/**
 * The minute cron's watch: raises an alert when the oldest due delivery has waited longer than
 * `BACKLOG_ALERT_SECONDS` (default 300), or when dead letters arrived during the last cron period
 * (`[scheduledTime − 60 s, scheduledTime)`, so consecutive runs neither miss nor double-count one).
 * Most minutes read the last two hours of deliveries; `wide` (once an hour) reads the 48 h horizon.
 * Throws when D1 cannot be read (the cron alerts about that); `checkBacklog` never throws.
 */
export async function runBacklogCheck(
  services: Services,
  options: { scheduledTimeMs?: number; wide?: boolean } = {},
): Promise<BacklogCheck> {
  const now = options.scheduledTimeMs ?? services.now();
  const since = now - CRON_PERIOD_MS;
  const { backlog, deadLetters } = await services.stats.backlogAndDeadLetters(
    now,
    options.wide ? BACKLOG_LOOKBACK_MS : CRON_BACKLOG_LOOKBACK_MS,
    since,
  );
  const waiting = summariseBacklog(backlog, now);
  const dead = summariseDeadLetters(deadLetters);
  const threshold = backlogAlertSeconds(services.env);
  const alerts: string[] = [];
  if (waiting.oldestQueuedSeconds > threshold) {
    alerts.push('backlog:oldest');
    await raiseAlert(
      services,
      'backlog:oldest',
      `the oldest queued delivery has waited ${waiting.oldestQueuedSeconds}s (alert above ${threshold}s); ${waiting.total} deliveries are waiting`,
    );
  }
  if (dead.recent > 0) {
    alerts.push('dead-letters:new');
    await raiseAlert(
      services,
      'dead-letters:new',
      `${dead.recent} new dead letters in the last minute; ${dead.total} are waiting for replay`,
    );
  }
  return {
    oldestQueuedSeconds: waiting.oldestQueuedSeconds,
    queued: waiting.total,
    newDeadLetters: dead.recent,
    deadLetters: dead.total,
    alerts,
  };
}

/** `runBacklogCheck` that never throws: a failure is logged and answers null. */
export async function checkBacklog(
  services: Services,
  options: { scheduledTimeMs?: number; wide?: boolean } = {},
): Promise<BacklogCheck | null> {
  try {
    return await runBacklogCheck(services, options);
  } catch (error) {
    log('error', 'backlog.check_failed', { error: String(error) });
    return null;
  }
}

/**
 * Records status changes known only by delivery id (callbacks, opens, clicks): loads what the
 * data point needs in one query, and only when the `ANALYTICS` binding exists.
 */
export async function recordStatusChangesById(
  services: Services,
  changes: readonly { deliveryId: string; status: DeliveryStatus; provider?: string | null }[],
): Promise<void> {
  if (!services.env.ANALYTICS || changes.length === 0) return;
  const loaded = await services.deliveries.loadForSending(changes.map((c) => c.deliveryId));
  for (const change of changes) {
    const d = loaded.get(change.deliveryId);
    if (d)
      recordStatusChange(services.env, {
        ...change,
        notificationId: d.notificationId,
        channel: d.channel,
        type: d.type,
      });
  }
}
