import type { Env } from '../../config/env';
import { AppError } from '../../domain/errors';
import { groupBy } from '../../lib/collections';
import { idBoundAt } from '../../lib/ids';
import { log } from '../../lib/log';
import { ArchiveStore, archiveKey } from '../../storage/archive-store';
import type { Shard } from '../../storage/shard-router';
import type { Services } from '../container';
import { sealForArchive } from './archive-seal';

/** How long deliveries are kept when `RETENTION_DAYS` is not set. */
export const DEFAULT_RETENTION_DAYS = 30;
/** Rows one step reads, archives and removes (one R2 write per hour of creation, one D1 commit). */
const PAGE_ROWS = 1000;
/** Rows the hourly cron removes at most per database: the rest wait for the next hour. */
export const MAX_RETAINED_PER_TICK = 5000;
/** Producer ids outlive their notification by this long, so such an id answers `expired` meanwhile. */
const KEYS_KEPT_FACTOR = 2;
const DAY_MS = 24 * 3600_000;

/** What one retention run did. */
export interface RetentionResult {
  before: string;
  archived: number;
  removed: number;
  objects: string[];
  /** The run stopped at its bound with older rows left. */
  more: boolean;
}

export function retentionDays(env: Pick<Env, 'RETENTION_DAYS'>): number {
  const days = Number(env.RETENTION_DAYS ?? DEFAULT_RETENTION_DAYS);
  return Number.isFinite(days) && days > 0 ? days : DEFAULT_RETENTION_DAYS;
}

/** The instant before which deliveries are removed now. */
export function retentionCutoff(env: Pick<Env, 'RETENTION_DAYS'>, nowMs: number): number {
  return nowMs - retentionDays(env) * DAY_MS;
}

/**
 * Retention: deliveries created before `beforeMs` are written to the R2 archive (as stored,
 * addresses and data still encrypted, and sealed with their user's key as well (`archive-seal`);
 * gzip NDJSON, one object per database and hour of creation,
 * in parts when an hour is larger than a step), and only then removed from D1 with what belongs to
 * them (the sandbox's outbox rows, their dead letters), whole notifications at a time, at most
 * `maxRows`. Without an `ARCHIVE` binding nothing is removed: no row leaves D1 unarchived.
 */
export async function runRetention(
  services: Services,
  beforeMs: number,
  maxRows: number,
): Promise<RetentionResult> {
  const bucket = services.env.ARCHIVE;
  if (!bucket) {
    throw new AppError(
      503,
      'archive_unbound',
      'ARCHIVE is not bound: retention removes nothing it cannot archive',
    );
  }
  const archive = new ArchiveStore(bucket);
  const result: RetentionResult = {
    before: new Date(beforeMs).toISOString(),
    archived: 0,
    removed: 0,
    objects: [],
    more: false,
  };
  for (const shard of services.router.shards) {
    await retainIn(services, shard, archive, beforeMs, maxRows, result);
  }
  // What is gone answers `expired` (a notification accepted before this and no longer found).
  if (result.removed > 0)
    await services.commit([services.operations.markPurgedStatement(beforeMs, services.now())]);
  const keysBefore = services.now() - KEYS_KEPT_FACTOR * retentionDays(services.env) * DAY_MS;
  await services.commit([services.deliveries.removeKeysStatement(Math.min(keysBefore, beforeMs), maxRows)]);
  // A send to topics is long expanded by then; its subscribers' rows went with the rest.
  await services.topicSends.deleteOlderThan(beforeMs, maxRows);
  if (result.removed > 0) log('info', 'retention.removed', { ...result, objects: result.objects.length });
  return result;
}

/**
 * One database's part of a run, page by page, until it is done or has removed `maxRows`: the bound
 * is per database, so a deployment with more databases removes more per run.
 */
async function retainIn(
  services: Services,
  shard: Shard,
  archive: ArchiveStore,
  beforeMs: number,
  maxRows: number,
  result: RetentionResult,
): Promise<void> {
  const deliveries = services.deliveries.on(shard);
  const before = idBoundAt('dlv', beforeMs);
  let removedHere = 0;
  while (removedHere < maxRows) {
    const rows = await deliveries.oldestBefore(before, Math.min(PAGE_ROWS, maxRows - removedHere));
    if (rows.length === 0) return;
    for (const [hour, part] of groupBy(
      await sealForArchive(services, rows),
      (row) => Math.floor(Number(row.created_at) / 3600_000) * 3600_000,
    )) {
      const key = archiveKey(shard.name, hour, String(part[0]?.id), String(part.at(-1)?.id));
      result.objects.push((await archive.put(key, part)).key);
      result.archived += part.length;
    }
    const ids = rows.map((row) => String(row.id));
    await services.commit([
      ...deliveries.removeStatements(ids),
      ...services.outbox.deleteForDeliveriesStatements(ids),
      ...services.operations.deleteDeadLettersStatements(ids),
    ]);
    result.removed += ids.length;
    removedHere += ids.length;
    if (removedHere >= maxRows) result.more = true;
  }
}

/** The hourly cron's retention step: the configured window, bounded; nothing without an archive. */
export async function retainDeliveries(services: Services): Promise<number> {
  if (!services.env.ARCHIVE) return 0;
  const cutoff = retentionCutoff(services.env, services.now());
  return (await runRetention(services, cutoff, MAX_RETAINED_PER_TICK)).removed;
}
