import type { Channel } from '../../domain/channels';
import { groupBy } from '../../lib/collections';
import { idBoundAt } from '../../lib/ids';
import { log } from '../../lib/log';
import { sendToQueue } from '../../queue/producer';
import type { Services } from '../container';

/** A delivery left `created` this long was not enqueued (the queue send failed, or the Worker died). */
export const STUCK_AFTER_MS = 60_000;
/** Every run looks this far back; once an hour it looks two days back. */
const RECENT_WINDOW_MS = 30 * 60_000;
const WIDE_WINDOW_MS = 48 * 3600_000;
/** Rows one claim statement takes. */
const CLAIM_LIMIT = 500;
/** Rows one cron tick claims at most: the rest are left for the next minute. */
export const MAX_SWEPT_PER_TICK = 5_000;

/** A claimed delivery. */
export interface Claimed {
  id: string;
  channel: Channel;
}

/** One pass over a range of ids: how to claim the next rows, and how to give refused ones back. */
export interface ClaimPass {
  /** Who sends: names the log line of a refused send and of the pass (`<by>.reenqueued`). */
  by: 'sweeper' | 'reaper';
  /** Where the pass starts (exclusive); each claim continues after the last id claimed. */
  after: string;
  /** Most rows the pass claims. */
  max: number;
  /** How long the messages it sends wait before a consumer sees them (none: at once). */
  delaySeconds?: number;
  claim: (after: string, limit: number, skipChannels: readonly Channel[]) => Promise<Claimed[]>;
  giveBack: (ids: readonly string[]) => Promise<void>;
}

export interface PassResult {
  claimed: number;
  sent: number;
  refused: number;
  refusedChannels: Channel[];
}

/**
 * Claims and enqueues in steps of CLAIM_LIMIT until the range is done or `max` rows are claimed.
 * Each channel is enqueued on its own: what a refusing queue was given is handed back, and that
 * channel is skipped for the rest of the pass, while the others go on. Every row of the range is
 * read once (each claim continues after the last id claimed).
 */
export async function runClaimPass(services: Services, pass: ClaimPass): Promise<PassResult> {
  const refusing = new Set<Channel>();
  const result: PassResult = { claimed: 0, sent: 0, refused: 0, refusedChannels: [] };
  let after = pass.after;
  while (result.claimed < pass.max) {
    const limit = Math.min(CLAIM_LIMIT, pass.max - result.claimed);
    const claimed = await pass.claim(after, limit, [...refusing]);
    result.claimed += claimed.length;
    const byChannel = [...groupBy(claimed, (row) => row.channel)];
    const sends = await Promise.all(
      byChannel.map(([channel, rows]) =>
        sendToQueue(
          services.env,
          channel,
          [{ deliveryIds: rows.map((row) => row.id), attempt: 0, delaySeconds: pass.delaySeconds }],
          pass.by,
        ),
      ),
    );
    const refused = sends.flatMap((s) => s.unsent);
    for (const [index, [channel]] of byChannel.entries()) {
      if ((sends[index]?.unsent.length ?? 0) > 0) refusing.add(channel);
    }
    result.sent += sends.reduce((n, s) => n + s.sent.length, 0);
    result.refused += refused.length;
    if (refused.length > 0) await pass.giveBack(refused);
    if (claimed.length < limit) break;
    for (const row of claimed) if (row.id > after) after = row.id;
  }
  result.refusedChannels = [...refusing];
  if (result.claimed > 0) {
    log('warn', `${pass.by}.reenqueued`, {
      count: result.sent,
      refused: result.refused,
      refusedChannels: result.refusedChannels.join(','),
      limited: result.claimed >= pass.max,
    });
  }
  return result;
}

/**
 * The cron sweeper: finds deliveries written but never enqueued (`created` for over a minute),
 * claims them atomically and sends them to their queues. It reads a range of the time-ordered
 * primary key (the last 30 minutes; 48 hours once an hour), so it needs no index and costs no index
 * row on the happy path. A channel whose queue refuses does not stop or strand the others; at most
 * MAX_SWEPT_PER_TICK rows are claimed per run and database, the rest are left for the next minute.
 */
export async function sweepStuckDeliveries(services: Services, wide = false): Promise<number> {
  const now = services.now();
  const cutoff = now - STUCK_AFTER_MS;
  const before = idBoundAt('dlv', cutoff);
  let sent = 0;
  for (const shard of services.router.shards) {
    const deliveries = services.deliveries.on(shard);
    const result = await runClaimPass(services, {
      by: 'sweeper',
      after: idBoundAt('dlv', now - (wide ? WIDE_WINDOW_MS : RECENT_WINDOW_MS)),
      max: MAX_SWEPT_PER_TICK,
      claim: (after, limit, skip) => deliveries.claimStuck({ after, before }, cutoff, limit, now, skip),
      // Counted as untouched since the cutoff: the next minute's sweep takes them again.
      giveBack: (ids) => deliveries.unclaim(ids, now, cutoff),
    });
    sent += result.sent;
  }
  return sent;
}
