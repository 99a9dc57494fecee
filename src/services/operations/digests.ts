import { isChannel } from '../../domain/channels';
import type { OpenDigest } from '../../durable/digest-storage';
import { log } from '../../lib/log';
import { sendToQueue } from '../../queue/producer';
import type { Services } from '../container';

/**
 * Sends a digest whose window closed (called by its Recipient object's alarm): the newest item
 * still held (not canceled) becomes the carrier, `queued` again, and goes to its channel's queue
 * with every item's id, so the consumer renders them all into one message. Throws when the queue
 * refuses it: the object keeps the digest and tries again.
 */
export async function releaseDigest(services: Services, digest: OpenDigest): Promise<void> {
  if (!isChannel(digest.channel)) return;
  const ids = digest.items.map((item) => item.deliveryId);
  const statuses = new Map((await services.deliveries.getDeliveries(ids)).map((d) => [d.id, d.status]));
  const held = ids.filter((id) => statuses.get(id) === 'digested' || statuses.get(id) === 'queued');
  const carrier = held.at(-1);
  if (!carrier) {
    log('info', 'digest.empty', { items: ids.length, channel: digest.channel });
    return;
  }
  if (!(await services.deliveries.claimCarrier(carrier, held.length, services.now()))) return;
  const { unsent } = await sendToQueue(
    services.env,
    digest.channel,
    [{ deliveryIds: [carrier], attempt: 0, digests: new Map([[carrier, ids]]) }],
    'consumer',
  );
  if (unsent.length > 0) throw new Error(`the ${digest.channel} queue refused the digest's carrier`);
  log('info', 'digest.released', { deliveryId: carrier, channel: digest.channel, items: held.length });
}
