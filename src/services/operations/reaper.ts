import { idBoundAt } from '../../lib/ids';
import type { Services } from '../container';
import { runClaimPass } from './sweeper';

/**
 * How long a waiting delivery may go untouched before it is known to have no message. No live
 * message waits longer than the queue's 12 h `delaySeconds` limit before a consumer sees it, and a
 * consumer that handles a delivery always writes its row or re-sends its id (a scheduled send hops
 * in ≤ 12 h steps without writing, hence the same test on `send_at`). 13 h leaves an hour's margin.
 */
export const LOST_AFTER_MS = 13 * 3600_000;
/** How far back the reaper looks (by the time-ordered id): older deliveries are left alone. */
export const REAPER_WINDOW_MS = 7 * 24 * 3600_000;
/**
 * How long a re-enqueued delivery waits before a consumer sees it: longer than the longest hop of a
 * message that travels with a provider's answer D1 refused (an hour, services/delivery/record.ts),
 * so were such a message alive after all, it records its answer first and the reaper's finds the
 * row final; a delivery that really lost its message (13 h ago) goes an hour later.
 */
export const REAPED_DELAY_SECONDS = 65 * 60;
/** Rows one pass claims at most: the rest wait for the next pass, an hour later. */
export const MAX_REAPED_PER_TICK = 5_000;

/**
 * The reaper: re-enqueues deliveries still waiting (`created`, `queued`, `deferred`) whose message
 * is gone — a dead-letter message whose retries ran out, a message the queue lost, a claim given
 * back whose write failed. A delivery counts as lost when its row has not been touched for
 * LOST_AFTER_MS and its send time (if any) is as old. The cron runs it once an hour: one pass over
 * the ids of the last REAPER_WINDOW_MS (every row in the range read once), at most
 * MAX_REAPED_PER_TICK claimed. A claim is atomic and writes "re-enqueued by the reaper" into the
 * history, and it is enqueued with REAPED_DELAY_SECONDS; what the queue refuses is given back,
 * still counted as lost, for the next pass. A duplicate is harmless: if the original message was
 * alive after all, the consumer finds the row final, or the recipient's lease held, and does not
 * send it twice.
 */
export async function reapLostDeliveries(services: Services): Promise<number> {
  const now = services.now();
  const quietSince = now - LOST_AFTER_MS;
  const before = idBoundAt('dlv', quietSince);
  let sent = 0;
  for (const shard of services.router.shards) {
    const deliveries = services.deliveries.on(shard);
    const result = await runClaimPass(services, {
      by: 'reaper',
      after: idBoundAt('dlv', now - REAPER_WINDOW_MS),
      max: MAX_REAPED_PER_TICK,
      delaySeconds: REAPED_DELAY_SECONDS,
      claim: (after, limit, skip) => deliveries.claimLost({ after, before }, quietSince, limit, now, skip),
      // Given back as untouched since before the cutoff, so the next pass finds them again.
      giveBack: (ids) => deliveries.unclaim(ids, now, quietSince - 1),
    });
    sent += result.sent;
  }
  return sent;
}
