import type { DeliveryToSend } from '../../domain/delivery';
import { parseDuration } from '../../domain/durations';
import { nextLocalTime } from '../../domain/quiet-hours';
import { MAX_DIGEST_ITEMS, type TypeConfig } from '../../domain/type-config';
import type { FoldRequest } from '../../durable/recipient';
import { log } from '../../lib/log';
import type { Services } from '../container';
import { renderLine } from '../templates/render';
import { configOf, contactOf, type DeliveryBatch } from './batch';
import { groupByRecipient } from './recipient-gate';

/** Delay before a delivery whose recipient object could not fold it is tried again. */
const FOLD_RETRY_SECONDS = 30;

/** The type's digest when it applies to this channel. */
export function digestOf(config: TypeConfig, channel: string): NonNullable<TypeConfig['digest']> | null {
  const digest = config.digest;
  if (!digest) return null;
  return !digest.channels || (digest.channels as string[]).includes(channel) ? digest : null;
}

/**
 * Step 5b: deliveries of a digest type fold into their recipient's open digest (its Durable
 * Object keeps it, one per type, channel and rendered key). Held ones end this batch `digested`;
 * one that fills the digest carries it now; the first of a window with sendFirst goes alone. A
 * digest's carrier (its message names the items) is not folded again. Before preferences: quiet
 * hours and opt-outs apply to what actually goes out, the carrier.
 */
export async function foldIntoDigests(batch: DeliveryBatch): Promise<void> {
  const folding = batch.todo.filter(
    (d) => !batch.digests.has(d.id) && digestOf(configOf(batch, d), d.channel),
  );
  if (folding.length === 0) return;
  const requests = new Map<string, FoldRequest>();
  for (const d of folding) requests.set(d.id, await foldRequest(batch, d));
  const byRecipient = await groupByRecipient(folding, (d) => d);
  const gone = new Set<string>();
  await Promise.all(
    [...byRecipient].map(async ([key, list]) => {
      try {
        const stub = batch.services.env.RECIPIENT.get(batch.services.env.RECIPIENT.idFromName(key));
        const verdicts = await stub.fold(list.map((d) => requests.get(d.id) as FoldRequest));
        list.forEach((d, i) => {
          const verdict = verdicts[i];
          if (verdict?.verdict === 'held') {
            gone.add(d.id);
            batch.pending.set(d.id, {
              outcome: {
                deliveryId: d.id,
                status: 'digested',
                reason: `held for a digest until ${new Date(verdict.closesAtMs).toISOString()}`,
                attempted: false,
              },
              decision: { kind: 'done' },
            });
          } else if (verdict?.verdict === 'release') {
            batch.digests.set(
              d.id,
              verdict.items.map((item) => item.deliveryId),
            );
          }
        });
      } catch (error) {
        log('error', 'digest.fold_failed', { count: list.length, error: String(error) });
        for (const d of list) {
          gone.add(d.id);
          batch.decisions.set(d.id, { kind: 'wait', delaySeconds: FOLD_RETRY_SECONDS });
        }
      }
    }),
  );
  batch.todo = batch.todo.filter((d) => !gone.has(d.id));
  // Items held by this very batch and carried by a delivery of it: their outcome says so at once.
  for (const [carrier, items] of batch.digests) {
    for (const id of items) {
      const held = batch.pending.get(id);
      if (id !== carrier && held?.outcome.status === 'digested')
        held.outcome.reason = `digested into ${carrier}`;
    }
  }
}

async function foldRequest(batch: DeliveryBatch, d: DeliveryToSend): Promise<FoldRequest> {
  const digest = digestOf(configOf(batch, d), d.channel) as NonNullable<TypeConfig['digest']>;
  const rendered = digest.key ? await renderLine(digest.key, { ...d.data, data: d.data }) : '';
  return {
    key: JSON.stringify([d.type, d.channel, rendered]),
    channel: d.channel,
    deliveryId: d.id,
    notificationId: d.notificationId,
    closesAtMs:
      typeof digest.window === 'string'
        ? batch.now + (parseDuration(digest.window) ?? 0) * 1000
        : nextLocalTime(
            batch.now,
            digest.window.at,
            digest.window.days,
            contactOf(batch, d)?.timezone ?? 'UTC',
          ),
    maxItems: digest.maxItems ?? MAX_DIGEST_ITEMS,
    sendFirst: digest.sendFirst ?? false,
    nowMs: batch.now,
  };
}

/** What a digest's template sees: its items (the newest 50, oldest first), their count and times. */
export async function digestContext(services: Services, itemIds: readonly string[]) {
  const deliveries = (await services.deliveries.getDeliveries(itemIds)).filter(
    (d) => d.status !== 'canceled',
  );
  const notifications = new Map(
    (await services.deliveries.getNotifications([...new Set(deliveries.map((d) => d.notificationId))])).map(
      (n) => [n.id, n],
    ),
  );
  const items = deliveries
    .map((d) => notifications.get(d.notificationId))
    .filter((n) => n !== undefined)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
    .map((n) => ({ notificationId: n.id, data: n.data, createdAt: n.createdAt }));
  return {
    count: items.length,
    items: items.slice(-MAX_DIGEST_ITEMS),
    firstAt: items[0]?.createdAt ?? null,
    lastAt: items.at(-1)?.createdAt ?? null,
  };
}
