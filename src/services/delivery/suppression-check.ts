import type { DeliveryToSend } from '../../domain/delivery';
import { addressValue, suppressedAddresses, suppressionKey } from '../recipients/suppressions';
import type { DeliveryBatch } from './batch';

/**
 * Step 6b: the suppression list again, at send time (one query for the batch): an address that
 * bounced, complained or unsubscribed after the delivery was accepted (while it was scheduled,
 * deferred or retrying) is not sent to.
 */
export async function checkSuppressions(batch: DeliveryBatch): Promise<void> {
  const candidates = batch.todo.flatMap((delivery) => {
    const value = delivery.address ? addressValue(delivery.address) : null;
    return value ? [{ delivery, value }] : [];
  });
  if (candidates.length === 0) return;
  const suppressed = await suppressedAddresses(
    batch.services,
    candidates.map((c) => c.value),
  );
  if (suppressed.size === 0) return;
  const keep: DeliveryToSend[] = [];
  const blocked = new Set(
    candidates
      .filter((c) => suppressed.has(suppressionKey(c.value.channel, c.value.value)))
      .map((c) => c.delivery.id),
  );
  for (const delivery of batch.todo) {
    if (!blocked.has(delivery.id)) {
      keep.push(delivery);
      continue;
    }
    batch.pending.set(delivery.id, {
      outcome: {
        deliveryId: delivery.id,
        status: 'suppressed',
        reason: 'address is on the suppression list (bounced, complained or unsubscribed)',
        attempted: false,
      },
      decision: { kind: 'done' },
    });
  }
  batch.todo = keep;
}
