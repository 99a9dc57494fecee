import type { Address } from '../../domain/address';
import type { DeliveryToSend } from '../../domain/delivery';
import {
  type DecisionRequest,
  type DeliveryOutcome,
  LEASE_MS,
  type Verdict,
} from '../../domain/recipient-rules';
import { MAX_QUEUE_DELAY_SECONDS } from '../../domain/retry';
import type { TypeConfig } from '../../domain/type-config';
import { groupBy } from '../../lib/collections';
import { sha256Hex } from '../../lib/crypto';
import { log } from '../../lib/log';
import type { Services } from '../container';
import type { Decision, DeliveryBatch, Pending } from './batch';

/**
 * The Recipient Durable Object is keyed by user id; a recipient given only inline (no user id)
 * is keyed by a hash of its address, so its caps and dedupe still hold without storing the address.
 */
export async function recipientKey(userId: string | null, address: Address): Promise<string> {
  return userId ? `user:${userId}` : `addr:${await sha256Hex(JSON.stringify(address))}`;
}

/** Groups items by their delivery's recipient object; items whose delivery has no address are left out. */
export async function groupByRecipient<T>(
  items: readonly T[],
  deliveryOf: (item: T) => DeliveryToSend,
): Promise<Map<string, T[]>> {
  const keyed = await Promise.all(
    items.map(async (item) => {
      const { userId, address } = deliveryOf(item);
      return { item, key: address ? await recipientKey(userId, address) : null };
    }),
  );
  const groups = groupBy(
    keyed.filter((k) => k.key !== null),
    (k) => k.key as string,
  );
  return new Map([...groups].map(([key, list]) => [key, list.map((k) => k.item)]));
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
  const byRecipient = await groupByRecipient(deliveries, (d) => d);
  const verdicts = new Map<string, Verdict>();
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      const requests: DecisionRequest[] = list.map((d) => {
        const config = configs.get(d.type) ?? {};
        const override = config.rateLimits?.[d.channel];
        return {
          deliveryId: d.id,
          notificationId: d.notificationId,
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
  const byRecipient = await groupByRecipient(
    unsent.map(({ delivery, nowMs }) => ({
      delivery,
      outcome: { deliveryId: delivery.id, sent: false, nowMs },
    })),
    (u) => u.delivery,
  );
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      const outcomes: DeliveryOutcome[] = list.map((u) => u.outcome);
      try {
        await services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(key)).complete(outcomes);
      } catch (error) {
        // The lease expires by itself; the slot is given back when the window slides.
        log('warn', 'recipient.release_failed', { count: outcomes.length, error: String(error) });
      }
    }),
  );
}

/** Delay before asking again when the recipient's object was unreachable. */
const RECIPIENT_RETRY_SECONDS = 30;

/**
 * Step 7: the recipient's rules (lease, dedupe, caps), one call per recipient's Durable Object.
 * `todo` keeps the deliveries allowed to go; the others get an outcome (`duplicate`,
 * `rate_limited`, `deferred`) or a plain wait (another consumer holds the lease, or the object
 * was unreachable).
 */
export async function askRecipients(batch: DeliveryBatch): Promise<void> {
  const verdicts = await decideBatch(batch.services, batch.todo, batch.configs, batch.now);
  const allowed: DeliveryToSend[] = [];
  for (const delivery of batch.todo) {
    const verdict = verdicts.get(delivery.id);
    if (!verdict) {
      batch.decisions.set(delivery.id, { kind: 'wait', delaySeconds: RECIPIENT_RETRY_SECONDS });
      continue;
    }
    const next = outcomeOfVerdict(delivery, verdict, batch.now);
    if (next === 'send') allowed.push(delivery);
    else if ('outcome' in next) batch.pending.set(delivery.id, next);
    else batch.decisions.set(delivery.id, next.decision);
  }
  batch.todo = allowed;
}

/**
 * Maps the recipient's verdict to what happens now: send, or an outcome without a provider call
 * (`duplicate`, `rate_limited`, `deferred`), or a plain wait (another consumer holds the lease).
 */
function outcomeOfVerdict(
  delivery: DeliveryToSend,
  verdict: Verdict,
  now: number,
): 'send' | Pending | { decision: Decision } {
  const base = { deliveryId: delivery.id, attempted: false };
  switch (verdict.verdict) {
    case 'send':
      return 'send';
    case 'leased':
      return { decision: { kind: 'wait', delaySeconds: Math.ceil(LEASE_MS / 1000) } };
    case 'duplicate':
      return {
        outcome: {
          ...base,
          status: 'duplicate',
          reason: `duplicate of ${verdict.firstDeliveryId} (same dedupe key within the window)`,
        },
        decision: { kind: 'done' },
      };
    case 'drop':
      return {
        outcome: {
          ...base,
          status: 'rate_limited',
          reason: `${delivery.channel} rate limit reached; low priority is dropped`,
        },
        decision: { kind: 'done' },
      };
    case 'defer': {
      const delaySeconds = Math.min(
        MAX_QUEUE_DELAY_SECONDS,
        Math.max(1, Math.ceil((verdict.untilMs - now) / 1000)),
      );
      return {
        outcome: {
          ...base,
          status: 'deferred',
          reason: `${delivery.channel} rate limit reached; next slot at ${new Date(verdict.untilMs).toISOString()}`,
        },
        decision: { kind: 'wait', delaySeconds },
      };
    }
  }
}

const WENT_OUT: ReadonlySet<string> = new Set(['sent', 'delivered']);

/** Step 9: gives back the rate slot and dedupe claim of the deliveries allowed but not sent. */
export async function releaseUnsentOf(
  batch: DeliveryBatch,
  allowed: readonly DeliveryToSend[],
): Promise<void> {
  // An in-app item is delivered as it is sent: it keeps its slot as a sent one does.
  const unsent = allowed.filter((d) => !WENT_OUT.has(batch.pending.get(d.id)?.outcome.status ?? 'queued'));
  if (unsent.length > 0)
    await releaseUnsent(
      batch.services,
      unsent.map((delivery) => ({ delivery, nowMs: batch.now })),
    );
}
