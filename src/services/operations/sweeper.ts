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
const CLAIM_LIMIT = 500;

/**
 * The cron sweeper: finds deliveries written but never enqueued, claims them atomically and
 * sends them to their queues. It reads a range of the time-ordered primary key, so it needs no
 * index (and costs no index row on the happy path). A claim whose enqueue fails is given back.
 */
export async function sweepStuckDeliveries(services: Services, wide = false): Promise<number> {
  const now = services.now();
  const from = idBoundAt('dlv', now - (wide ? WIDE_WINDOW_MS : RECENT_WINDOW_MS));
  const to = idBoundAt('dlv', now - STUCK_AFTER_MS);
  let total = 0;
  for (;;) {
    const claimed = await services.deliveries.claimStuck(from, to, now - STUCK_AFTER_MS, CLAIM_LIMIT, now);
    if (claimed.length === 0) break;
    const byChannel = groupBy(claimed, (row) => row.channel);
    for (const [channel, rows] of byChannel) {
      const ids = rows.map((row) => row.id);
      const { sent, unsent } = await sendToQueue(
        services.env,
        channel,
        [{ deliveryIds: ids, attempt: 0 }],
        'sweeper',
      );
      total += sent.length;
      if (unsent.length > 0) {
        await services.deliveries.unclaim(unsent, now);
        return total;
      }
    }
    if (claimed.length < CLAIM_LIMIT) break;
  }
  if (total > 0) log('warn', 'sweeper.reenqueued', { count: total });
  return total;
}
