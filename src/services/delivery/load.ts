import type { Channel } from '../../domain/channels';
import { MAX_QUEUE_DELAY_SECONDS } from '../../domain/retry';
import { FINAL_FOR_SENDING } from '../../domain/status';
import { log } from '../../lib/log';
import type { ProviderDeps } from '../../providers/types';
import type { CarriedOutcome } from '../../queue/messages';
import type { Services } from '../container';
import { raiseAlert } from '../operations/alerts';
import { providerSwitches } from '../operations/provider-switches';
import type { DeliveryBatch } from './batch';

/** Delay before retrying a batch that could not start (a misconfigured provider, say). */
const CONFIG_RETRY_SECONDS = 60;

/**
 * How long a delivery id without a row is waited for. Ingest hands deliveries to the queue before
 * it writes their rows, so a fast consumer can get there first; after this, the write failed (the
 * producer got an error) and the message is dropped.
 */
export const MISSING_ROW_GRACE_MS = 2 * 60 * 1000;
const MISSING_ROW_RETRY_SECONDS = 2;
/** How long a delivery of a moving bucket waits before it looks again (a move's copy takes seconds). */
const MOVING_RETRY_SECONDS = 10;

/** What the queue's messages tell the pipeline besides the ids. */
export interface BatchInput {
  deps?: ProviderDeps;
  /** When ingest handed each id over; absent ids are not waited for. */
  handedAt?: ReadonlyMap<string, number>;
  pins?: ReadonlyMap<string, string>;
  carried?: ReadonlyMap<string, CarriedOutcome>;
  /** Digest carriers from the messages: the ids folded into each. */
  digests?: ReadonlyMap<string, string[]>;
}

/** Step 1: one D1 query loads every delivery of the batch with what it needs of its notification. */
export async function loadBatch(
  services: Services,
  channel: Channel,
  ids: readonly string[],
  options: BatchInput,
): Promise<DeliveryBatch> {
  const loaded = await services.deliveries.loadForSending(ids);
  return {
    services,
    channel,
    now: services.now(),
    ids: [...new Set(ids)],
    handedAt: options.handedAt ?? new Map(),
    pins: options.pins ?? new Map(),
    digests: new Map(options.digests ?? []),
    carried: options.carried ?? new Map(),
    ...(options.deps ? { deps: options.deps } : {}),
    moving: await services.deliveries.movingAmong(ids, loaded),
    loaded,
    contacts: new Map(),
    preferences: new Map(),
    configs: new Map(),
    chain: [],
    captured: [],
    todo: [],
    pending: new Map(),
    decisions: new Map(),
  };
}

/**
 * Step 2: the channel's provider chain. A listed provider without credentials blocks the whole
 * batch: say so loudly and keep the messages for when it is fixed. Returns false then.
 */
export async function openChain(batch: DeliveryBatch): Promise<boolean> {
  const { services, channel } = batch;
  try {
    const switches = await providerSwitches(services, batch.now);
    const sink = (request: (typeof batch.captured)[number]) => batch.captured.push(request);
    batch.chain = services.registry.chain(services.env, channel, sink, batch.deps, switches);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await raiseAlert(services, `provider-config:${channel}`, `${channel} delivery is blocked: ${message}`);
    for (const id of batch.ids)
      batch.decisions.set(id, { kind: 'retry', delaySeconds: CONFIG_RETRY_SECONDS });
    return false;
  }
}

/** Step 3: one query loads the contacts of every user in the batch. */
export async function loadContacts(batch: DeliveryBatch): Promise<void> {
  const userIds = [...batch.loaded.values()].map((d) => d.userId).filter((u): u is string => u !== null);
  if (userIds.length > 0) batch.contacts = await batch.services.contacts.getMany(userIds);
}

/**
 * Step 4: what needs no decision. A delivery without a row yet is waited for (ingest may still be
 * writing it) until the grace period ends; a final one is done; one whose answer travelled with
 * it (D1 refused it earlier) records that answer and is never sent again; an unreadable one fails
 * alone; one not yet due waits for its time. An id given twice in one batch is handled once.
 */
export function triage(batch: DeliveryBatch): void {
  const { now, channel } = batch;
  for (const id of batch.ids) {
    const delivery = batch.loaded.get(id);
    if (batch.moving.has(id)) {
      waitForMove(batch, id);
    } else if (!delivery) {
      const since = batch.handedAt.get(id);
      if (since !== undefined && now - since < MISSING_ROW_GRACE_MS) {
        log('info', 'delivery.not_written_yet', { deliveryId: id, channel, waitedMs: now - since });
        batch.decisions.set(id, { kind: 'wait', delaySeconds: MISSING_ROW_RETRY_SECONDS });
      } else {
        log('warn', 'delivery.missing', { deliveryId: id, channel });
        batch.decisions.set(id, { kind: 'done' });
      }
    } else if (FINAL_FOR_SENDING.has(delivery.status)) {
      batch.decisions.set(id, { kind: 'done' });
    } else if (batch.carried.has(id)) {
      const { carries: _carries, ...outcome } = batch.carried.get(id) as CarriedOutcome;
      batch.pending.set(id, {
        outcome: { ...outcome, deliveryId: id },
        decision: { kind: 'done' },
        carried: true,
      });
    } else if (delivery.unreadable) {
      log('error', 'delivery.unreadable', { deliveryId: id, channel, error: delivery.unreadable });
      batch.pending.set(id, {
        outcome: {
          deliveryId: id,
          status: 'failed',
          reason: `row cannot be read: ${delivery.unreadable}`,
          attempted: false,
        },
        decision: { kind: 'done' },
      });
    } else if (delivery.sendAtMs !== null && delivery.sendAtMs - now > 1000) {
      const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil((delivery.sendAtMs - now) / 1000));
      batch.decisions.set(id, { kind: 'wait', delaySeconds });
    } else {
      batch.todo.push(delivery);
    }
  }
}

/**
 * A delivery whose bucket is moving to another database waits for the move (its rows are locked
 * meanwhile), keeping its pin and any answer it carries; waiting counts no attempt.
 */
function waitForMove(batch: DeliveryBatch, id: string): void {
  log('info', 'delivery.bucket_moving', { deliveryId: id, channel: batch.channel });
  const carried = batch.carried.get(id);
  const pin = batch.pins.get(id);
  batch.decisions.set(
    id,
    carried
      ? { kind: 'carry', delaySeconds: MOVING_RETRY_SECONDS, outcome: carried }
      : { kind: 'wait', delaySeconds: MOVING_RETRY_SECONDS, ...(pin ? { pin } : {}) },
  );
}

/** Step 5: each type's configuration, once per type. */
export async function loadTypeConfigs(batch: DeliveryBatch): Promise<void> {
  for (const type of new Set(batch.todo.map((d) => d.type))) {
    batch.configs.set(type, await batch.services.templates.typeConfig(type));
  }
}
