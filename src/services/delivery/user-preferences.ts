import type { DeliveryToSend } from '../../domain/delivery';
import { NO_PREFERENCES, preferenceVerdict } from '../../domain/preferences';
import { MAX_QUEUE_DELAY_SECONDS } from '../../domain/retry';
import { configOf, contactOf, type DeliveryBatch } from './batch';

/**
 * Step 6: the user's wishes (opt-outs, quiet hours), before the recipient's rules, so an unwanted
 * delivery takes no rate slot. One query loads every user's preferences.
 */
export async function applyPreferences(batch: DeliveryBatch): Promise<void> {
  const users = batch.todo.map((d) => d.userId).filter((u): u is string => u !== null);
  if (users.length > 0) batch.preferences = await batch.services.preferences.getMany(users);
  const wanted: DeliveryToSend[] = [];
  for (const delivery of batch.todo) {
    const settings = (delivery.userId && batch.preferences.get(delivery.userId)) || NO_PREFERENCES;
    const timezone = contactOf(batch, delivery)?.timezone ?? null;
    const verdict = preferenceVerdict(settings, delivery, configOf(batch, delivery), timezone, batch.now);
    if (verdict.verdict === 'send') {
      wanted.push(delivery);
    } else if (verdict.verdict === 'suppress') {
      batch.pending.set(delivery.id, {
        outcome: { deliveryId: delivery.id, status: 'suppressed', reason: verdict.reason, attempted: false },
        decision: { kind: 'done' },
      });
    } else {
      const delaySeconds = Math.min(
        MAX_QUEUE_DELAY_SECONDS,
        Math.max(1, Math.ceil((verdict.untilMs - batch.now) / 1000)),
      );
      batch.pending.set(delivery.id, {
        outcome: { deliveryId: delivery.id, status: 'deferred', reason: verdict.reason, attempted: false },
        decision: { kind: 'wait', delaySeconds },
      });
    }
  }
  batch.todo = wanted;
}
