import { AppError } from '../../domain/errors';
import { BUCKETS } from '../../domain/shards';
import { log } from '../../lib/log';
import { type BucketMove, BucketMovesRepo } from '../../storage/bucket-moves-repo';
import { BucketRows, type TableCursor } from '../../storage/bucket-rows';
import { MOVES_TTL_MS, type Shard } from '../../storage/shard-router';
import type { Services } from '../container';

/**
 * Moving a bucket to another database, in four steps the operator runs in order (the
 * `shards:move` script does):
 *
 * 1. `lock`: the move is announced in the home database (`bucket_moves`); once every router has
 *    read it (`ANNOUNCE_MS`), the bucket's rows are locked in both databases (their triggers refuse
 *    any write, whoever routes there), so nothing changes them while they are copied. Writers
 *    answer 503 `bucket_moving` and the queue consumer waits; an outcome refused carries on.
 * 2. `copy`: what an earlier attempt left in the target is removed, then every row is copied, page
 *    by page; the step ends when both databases count the same rows.
 * 3. `switch`: the target is unlocked and named in the home database's `bucket_moves`: routers
 *    read it within `MOVES_TTL_MS`. The source stays locked, so a router that has not read it yet
 *    is refused, never obeyed.
 * 4. `clean`: once every router has read the switch, the source's copy is removed.
 *
 * Every step can be run again (after a lost answer, say): it resumes where it stood. Before the
 * switch, `abort` removes the target's copy and unlocks the bucket where it was.
 */
export type MoveStep = 'lock' | 'copy' | 'switch' | 'clean' | 'abort';

export interface MoveReport {
  bucket: number;
  from: string;
  to: string;
  phase: BucketMove['phase'];
  /** Call the step again (after `waitSeconds`, when given). */
  more: boolean;
  waitSeconds?: number;
  /** Rows of the bucket in each database, per table (after `copy`). */
  rows?: Record<string, Record<string, number>>;
}

/** How long `lock` waits between announcing a move and locking: every router has read it by then. */
export const ANNOUNCE_MS = MOVES_TTL_MS + 2_000;
/** How long `clean` waits after `switch`: every router has read the switch by then. */
export const SWITCH_SETTLE_MS = 2 * MOVES_TTL_MS + 5_000;
/** How long one call works before answering `more`. */
const STEP_BUDGET_MS = 5_000;
const MAX_PAGES_PER_CALL = 100;

interface Where {
  bucket: number;
  source: Shard;
  target: Shard;
  move: BucketMove | null;
}

/** Runs (part of) one step of moving `bucket` to the database bound as `to`. */
export async function moveBucket(
  services: Services,
  request: { bucket: number; to: string; step: MoveStep },
): Promise<MoveReport> {
  const where = await locate(services, request.bucket, request.to);
  switch (request.step) {
    case 'lock':
      return lockBucket(services, where);
    case 'copy':
      return copyBucket(services, where);
    case 'switch':
      return switchBucket(services, where);
    case 'clean':
      return cleanBucket(services, where);
    case 'abort':
      return abortMove(services, where);
  }
}

/** Where the bucket is and where it goes; refuses a second move while one is underway. */
async function locate(services: Services, bucket: number, to: string): Promise<Where> {
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= BUCKETS)
    throw new AppError(422, 'validation_error', `bucket: must be 0-${BUCKETS - 1}`, [
      { field: 'bucket', message: `must be 0-${BUCKETS - 1}` },
    ]);
  const router = services.router;
  const target = router.database(to);
  if (!target)
    throw new AppError(422, 'validation_error', `to: ${to} is not a bound database`, [
      { field: 'to', message: `${to} is not a bound database (add its [[d1_databases]] binding)` },
    ]);
  const moves = await new BucketMovesRepo(router.home.db).all();
  router.apply(moves);
  const other = moves.find((m) => m.bucket !== bucket && m.phase !== 'done');
  if (other) throw new AppError(409, 'move_underway', `bucket ${other.bucket} is moving; finish it first`);
  const latest = moves.find((m) => m.bucket === bucket);
  if (latest && latest.phase !== 'done' && latest.to !== to)
    throw new AppError(409, 'move_underway', `bucket ${bucket} is moving to ${latest.to}`);
  // The same move again, underway or finished, resumes or reports; any other starts afresh.
  if (latest && latest.to === to && (latest.phase !== 'done' || latest.from !== latest.to))
    return { bucket, source: router.database(latest.from) as Shard, target, move: latest };
  return { bucket, source: router.forBucket(bucket), target, move: null };
}

const report = (
  where: Where,
  phase: MoveReport['phase'],
  more: boolean,
  extra: Partial<MoveReport> = {},
) => ({
  bucket: where.bucket,
  from: where.source.name,
  to: where.target.name,
  phase,
  more,
  ...extra,
});

function requirePhase(where: Where, ...phases: BucketMove['phase'][]): BucketMove {
  if (!where.move || !phases.includes(where.move.phase))
    throw new AppError(
      409,
      'wrong_step',
      `bucket ${where.bucket} is ${where.move?.phase ?? 'not moving'}; this step needs ${phases.join(' or ')}`,
    );
  return where.move;
}

async function saveMove(services: Services, where: Where, move: Omit<BucketMove, 'bucket' | 'from' | 'to'>) {
  const saved = { bucket: where.bucket, from: where.source.name, to: where.target.name, ...move };
  await new BucketMovesRepo(services.router.home.db).put(saved);
  where.move = saved;
  services.router.apply(await new BucketMovesRepo(services.router.home.db).all());
}

async function lockBucket(services: Services, where: Where): Promise<MoveReport> {
  if (where.move && where.move.phase !== 'locking') return report(where, where.move.phase, false);
  if (where.source === where.target)
    throw new AppError(409, 'already_there', `bucket ${where.bucket} already lives in ${where.target.name}`);
  // Announced first: once every router has read it, writers refuse the bucket before writing
  // anything, and the database locks below only catch a router that could not read it.
  if (!where.move) {
    await saveMove(services, where, { phase: 'locking', cursor: null, updatedAt: services.now() });
    logMove('shards.bucket_locking', where);
  }
  const waitMs = (where.move as BucketMove).updatedAt + ANNOUNCE_MS - services.now();
  if (waitMs > 0) return report(where, 'locking', true, { waitSeconds: Math.ceil(waitMs / 1000) });
  const source = new BucketRows(where.source.db);
  const started = services.now();
  // Older contact rows learn their bucket first, so the lock guards every row of it.
  while (!(await source.backfillBuckets())) {
    if (services.now() - started > STEP_BUDGET_MS) return report(where, 'locking', true);
  }
  const nowMs = services.now();
  await source.lock(where.bucket, 'away', nowMs);
  await new BucketRows(where.target.db).lock(where.bucket, 'incoming', nowMs);
  await saveMove(services, where, {
    phase: 'locked',
    cursor: JSON.stringify(startCursor('clear')),
    updatedAt: nowMs,
  });
  logMove('shards.bucket_locked', where);
  return report(where, 'locked', false);
}

interface PassCursor extends TableCursor {
  pass: 'clear' | 'copy';
}

const startCursor = (pass: PassCursor['pass']): PassCursor => ({ pass, table: 0, after: null });

async function copyBucket(services: Services, where: Where): Promise<MoveReport> {
  const move = requirePhase(where, 'locked', 'copied', 'moved', 'done');
  if (move.phase !== 'locked') return report(where, move.phase, false);
  const source = new BucketRows(where.source.db);
  const target = new BucketRows(where.target.db);
  let cursor: PassCursor | null = move.cursor
    ? (JSON.parse(move.cursor) as PassCursor)
    : startCursor('clear');
  const started = services.now();
  for (let page = 0; cursor && page < MAX_PAGES_PER_CALL; page++) {
    const next: TableCursor | null =
      cursor.pass === 'clear'
        ? await target.deletePage(where.bucket, cursor)
        : await source.copyPage(where.bucket, cursor, target);
    cursor = next ? { pass: cursor.pass, ...next } : cursor.pass === 'clear' ? startCursor('copy') : null;
    if (cursor && services.now() - started > STEP_BUDGET_MS) break;
  }
  if (cursor) {
    await saveMove(services, where, {
      phase: 'locked',
      cursor: JSON.stringify(cursor),
      updatedAt: services.now(),
    });
    return report(where, 'locked', true);
  }
  const rows = {
    [where.source.name]: await source.count(where.bucket),
    [where.target.name]: await target.count(where.bucket),
  };
  if (JSON.stringify(rows[where.source.name]) !== JSON.stringify(rows[where.target.name])) {
    // Cannot happen while both are locked; if it does, copy again from the start rather than switch.
    log('error', 'shards.copy_mismatch', { bucket: where.bucket, rows: JSON.stringify(rows) });
    await saveMove(services, where, {
      phase: 'locked',
      cursor: JSON.stringify(startCursor('clear')),
      updatedAt: services.now(),
    });
    throw new AppError(
      409,
      'copy_mismatch',
      `bucket ${where.bucket}: the copy differs; run copy again`,
      rows,
    );
  }
  await saveMove(services, where, { phase: 'copied', cursor: null, updatedAt: services.now() });
  logMove('shards.bucket_copied', where, { rows: JSON.stringify(rows[where.target.name]) });
  return report(where, 'copied', false, { rows });
}

/** One log line per step of a move, naming the bucket and both databases. */
function logMove(event: string, where: Where, extra: Record<string, unknown> = {}): void {
  log('info', event, { bucket: where.bucket, from: where.source.name, to: where.target.name, ...extra });
}

async function switchBucket(services: Services, where: Where): Promise<MoveReport> {
  const move = requirePhase(where, 'copied', 'moved', 'done');
  if (move.phase !== 'copied') return report(where, move.phase, false);
  // The target first: a router still reading the old map writes to the source and is refused.
  await new BucketRows(where.target.db).unlock(where.bucket);
  await saveMove(services, where, { phase: 'moved', cursor: null, updatedAt: services.now() });
  logMove('shards.bucket_switched', where);
  return report(where, 'moved', false);
}

async function cleanBucket(services: Services, where: Where): Promise<MoveReport> {
  const move = requirePhase(where, 'moved', 'done');
  if (move.phase === 'done') return report(where, 'done', false);
  const waitMs = move.updatedAt + SWITCH_SETTLE_MS - services.now();
  if (move.cursor === null && waitMs > 0)
    return report(where, 'moved', true, { waitSeconds: Math.ceil(waitMs / 1000) });
  const source = new BucketRows(where.source.db);
  let cursor: TableCursor | null = move.cursor
    ? (JSON.parse(move.cursor) as TableCursor)
    : { table: 0, after: null };
  const started = services.now();
  for (let page = 0; cursor && page < MAX_PAGES_PER_CALL; page++) {
    cursor = await source.deletePage(where.bucket, cursor);
    if (cursor && services.now() - started > STEP_BUDGET_MS) break;
  }
  if (cursor) {
    await saveMove(services, where, {
      phase: 'moved',
      cursor: JSON.stringify(cursor),
      updatedAt: move.updatedAt,
    });
    return report(where, 'moved', true);
  }
  await saveMove(services, where, { phase: 'done', cursor: null, updatedAt: services.now() });
  logMove('shards.bucket_moved', where);
  return report(where, 'done', false);
}

/** Undoes a move before its switch: the target's copy goes, and the bucket stays where it was. */
async function abortMove(services: Services, where: Where): Promise<MoveReport> {
  if (!where.move) {
    const here = where.source.name;
    return { bucket: where.bucket, from: here, to: here, phase: 'done', more: false };
  }
  const move = requirePhase(where, 'locking', 'locked', 'copied');
  const target = new BucketRows(where.target.db);
  let cursor: TableCursor | null = { table: 0, after: null };
  const started = services.now();
  while (cursor) {
    cursor = await target.deletePage(where.bucket, cursor);
    if (cursor && services.now() - started > STEP_BUDGET_MS) return report(where, move.phase, true);
  }
  await target.unlock(where.bucket);
  await new BucketRows(where.source.db).unlock(where.bucket);
  // Recorded as a finished move to where it already was: the map then names its database.
  const stay = { bucket: where.bucket, from: where.source.name, to: where.source.name };
  await new BucketMovesRepo(services.router.home.db).put({
    ...stay,
    phase: 'done',
    cursor: null,
    updatedAt: services.now(),
  });
  services.router.apply(await new BucketMovesRepo(services.router.home.db).all());
  logMove('shards.move_aborted', where);
  return { ...stay, phase: 'done', more: false };
}

/** Where every bucket lives now, as ranges per database, and the moves on record. */
export async function shardLayout(services: Services): Promise<{
  databases: { name: string; buckets: string; count: number }[];
  moves: BucketMove[];
}> {
  const router = services.router;
  const moves = await new BucketMovesRepo(router.home.db).all();
  router.apply(moves);
  const databases = router.databases.map((shard) => {
    const mine = Array.from({ length: BUCKETS }, (_, b) => b).filter((b) => router.forBucket(b) === shard);
    return { name: shard.name, buckets: asRanges(mine), count: mine.length };
  });
  return { databases, moves };
}

/** `[0,1,2,5]` → `0-2,5`. */
function asRanges(buckets: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < buckets.length; ) {
    let j = i;
    while (j + 1 < buckets.length && buckets[j + 1] === (buckets[j] as number) + 1) j++;
    parts.push(i === j ? `${buckets[i]}` : `${buckets[i]}-${buckets[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
