import type { Address } from '../../domain/address';
import type { Channel } from '../../domain/channels';
import { MAX_QUEUE_DELAY_SECONDS } from '../../domain/retry';
import { log } from '../../lib/log';
import { sendToQueue } from '../../queue/producer';
import type { NewDelivery, NewNotification } from '../../storage/deliveries-repo';
import type { Services } from '../container';
import { recipientKey } from '../delivery/recipient-gate';
import {
  type AddressValue,
  addressValue,
  suppressedAddresses,
  suppressionKey,
} from '../recipients/suppressions';

/** A notification's planned rows (or some of them: a page of a topic's subscribers). */
export interface Part {
  notification: NewNotification;
  deliveries: NewDelivery[];
}

/**
 * What happens to planned deliveries before their rows are written: suppressed addresses are
 * marked, a later escalation step waits `scheduled` (its timer is set after the write), and the
 * rest go to their channel queues, `queued` when the queue took them (`created` otherwise, for the
 * sweeper). The rows are written after this, so a message may arrive before its row: the consumer
 * waits for it a while (see MISSING_ROW_GRACE_MS).
 */
export async function handOver(services: Services, parts: readonly Part[]): Promise<void> {
  await applySuppressions(services, parts);
  for (const p of parts)
    for (const d of p.deliveries)
      if (d.status === 'created' && d.escalation && d.sendAtMs !== undefined) d.status = 'scheduled';
  const queued = new Set(await enqueue(services, parts, services.now()));
  for (const p of parts) for (const d of p.deliveries) if (queued.has(d.id)) d.status = 'queued';
}

/**
 * Addresses on the suppression list (hard bounces, complaints, unsubscribes of recipients without
 * a user id) are planned `suppressed`: one query for the whole request.
 */
async function applySuppressions(services: Services, prepared: readonly Part[]): Promise<void> {
  const candidates = prepared.flatMap((p) => p.deliveries).filter((d) => d.status === 'created' && d.address);
  const values = candidates
    .map((d) => (d.address ? addressValue(d.address) : null))
    .filter((v): v is AddressValue => v !== null);
  if (values.length === 0) return;
  const suppressed = await suppressedAddresses(services, values);
  if (suppressed.size === 0) return;
  for (const d of candidates) {
    const value = d.address ? addressValue(d.address) : null;
    if (value && suppressed.has(suppressionKey(value.channel, value.value))) {
      d.status = 'suppressed';
      d.reason = 'address is on the suppression list (bounced, complained or unsubscribed)';
    }
  }
}

/**
 * Sends the `created` deliveries to their channel queues, several ids per message, and returns
 * the ids the queues took. A send time becomes `delaySeconds` (at most the queue's limit).
 */
async function enqueue(services: Services, prepared: readonly Part[], now: number): Promise<string[]> {
  const byChannelAndDelay = new Map<Channel, Map<number, string[]>>();
  for (const { notification, deliveries } of prepared) {
    for (const d of deliveries) {
      if (d.status !== 'created') continue;
      // A send time beyond the queue's delay limit hops: the consumer re-enqueues it until it is due.
      const sendAtMs = d.sendAtMs ?? notification.sendAtMs;
      const delay = sendAtMs
        ? Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, Math.ceil((sendAtMs - now) / 1000)))
        : 0;
      const byDelay = byChannelAndDelay.get(d.channel) ?? new Map<number, string[]>();
      byChannelAndDelay.set(d.channel, byDelay);
      const ids = byDelay.get(delay) ?? [];
      byDelay.set(delay, ids);
      ids.push(d.id);
    }
  }
  const results = await Promise.all(
    [...byChannelAndDelay].map(([channel, byDelay]) =>
      sendToQueue(
        services.env,
        channel,
        [...byDelay].map(([delaySeconds, deliveryIds]) => ({
          deliveryIds,
          attempt: 0,
          delaySeconds,
          at: now,
        })),
        'ingest',
      ),
    ),
  );
  return results.flatMap((r) => r.sent);
}

/**
 * Hands each recipient's later escalation steps to their Recipient object, whose alarm sends them
 * when due. Where the object cannot be reached, the steps go to their queues with the delay
 * instead; a step neither took waits `scheduled` until the reaper finds it due.
 */
export async function scheduleLaterSteps(services: Services, fresh: readonly Part[]): Promise<void> {
  const steps = fresh.flatMap((p) =>
    p.deliveries.filter((d) => d.status === 'scheduled' && d.sendAtMs !== undefined && d.address),
  );
  if (steps.length === 0) return;
  const byRecipient = new Map<string, NewDelivery[]>();
  for (const d of steps) {
    const key = await recipientKey(d.userId, d.address as Address);
    byRecipient.set(key, [...(byRecipient.get(key) ?? []), d]);
  }
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      try {
        await services.env.RECIPIENT.get(services.env.RECIPIENT.idFromName(key)).schedule(
          list.map((d) => ({ deliveryId: d.id, channel: d.channel, dueAtMs: d.sendAtMs as number })),
        );
      } catch (error) {
        log('warn', 'escalation.schedule_failed', { count: list.length, error: String(error) });
        await delayedFallback(services, list);
      }
    }),
  );
}

async function delayedFallback(services: Services, steps: readonly NewDelivery[]): Promise<void> {
  const now = services.now();
  for (const d of steps) {
    const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(((d.sendAtMs as number) - now) / 1000));
    await sendToQueue(
      services.env,
      d.channel,
      [{ deliveryIds: [d.id], attempt: 0, delaySeconds, at: now }],
      'ingest',
    );
  }
}
