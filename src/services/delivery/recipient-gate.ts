import type { Address } from '../../domain/address';
import type { DeliveryToSend } from '../../domain/delivery';
import type { DecisionRequest, DeliveryOutcome, Verdict } from '../../domain/recipient-rules';
import type { TypeConfig } from '../../domain/type-config';
import { sha256Hex } from '../../lib/crypto';
import { log } from '../../lib/log';
import type { Services } from '../container';

/**
 * The Recipient Durable Object is keyed by user id; a recipient given only inline (no user id)
 * is keyed by a hash of its address, so its caps and dedupe still hold without storing the address.
 */
export async function recipientKey(userId: string | null, address: Address): Promise<string> {
  return userId ? `user:${userId}` : `addr:${await sha256Hex(JSON.stringify(address))}`;
}

/**
 * Asks each recipient's Durable Object once for the whole batch. A recipient whose object cannot
 * be reached gets no verdicts (its deliveries wait and are tried again), never a blind send.
 */
export async function decideBatch(
  services: Services,
  deliveries: readonly DeliveryToSend[],
  configs: ReadonlyMap<string, TypeConfig>,
  nowMs: number,
): Promise<Map<string, Verdict>> {
  const byRecipient = new Map<string, DeliveryToSend[]>();
  for (const d of deliveries) {
    if (!d.address) continue;
    const key = await recipientKey(d.userId, d.address);
    byRecipient.set(key, [...(byRecipient.get(key) ?? []), d]);
  }
  const verdicts = new Map<string, Verdict>();
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      const requests: DecisionRequest[] = list.map((d) => {
        const config = configs.get(d.type) ?? {};
        const override = config.rateLimits?.[d.channel];
        return {
          deliveryId: d.id,
          channel: d.channel,
          type: d.type,
          priority: d.priority,
          ...(d.dedupeKey ? { dedupeKey: d.dedupeKey } : {}),
          ...(config.dedupeWindowSeconds ? { dedupeWindowSeconds: config.dedupeWindowSeconds } : {}),
          ...(override !== undefined ? { rateLimit: override } : {}),
          nowMs,
        };
      });
      try {
        const stub = services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(key));
        const answers = await stub.decide(requests);
        list.forEach((d, i) => {
          const answer = answers[i];
          if (answer) verdicts.set(d.id, answer);
        });
      } catch (error) {
        log('error', 'recipient.unavailable', { count: list.length, error: String(error) });
      }
    }),
  );
  return verdicts;
}

/** Gives back the rate slot and dedupe claim of deliveries that were allowed but not sent. */
export async function releaseUnsent(
  services: Services,
  unsent: readonly { delivery: DeliveryToSend; nowMs: number }[],
): Promise<void> {
  const byRecipient = new Map<string, DeliveryOutcome[]>();
  for (const { delivery, nowMs } of unsent) {
    if (!delivery.address) continue;
    const key = await recipientKey(delivery.userId, delivery.address);
    byRecipient.set(key, [...(byRecipient.get(key) ?? []), { deliveryId: delivery.id, sent: false, nowMs }]);
  }
  await Promise.all(
    [...byRecipient].map(async ([key, outcomes]) => {
      try {
        await services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(key)).complete(outcomes);
      } catch (error) {
        // The lease expires by itself; the slot is given back when the window slides.
        log('warn', 'recipient.release_failed', { count: outcomes.length, error: String(error) });
      }
    }),
  );
}
