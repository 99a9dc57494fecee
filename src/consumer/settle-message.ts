import type { Channel } from '../domain/channels';
import type { CarriedOutcome, QueueMessage } from '../queue/messages';
import { type Dispatch, sendToQueue } from '../queue/producer';
import type { Services } from '../services/container';
import type { Decision } from '../services/delivery/deliver-batch';

/** Delay before a message whose onward sends the queue refused is tried again. */
export const REQUEUE_FAILURE_RETRY_SECONDS = 30;

/** The ids of one message that go on, grouped by what they carry with them. */
interface Onward {
  dispatches: Map<string, Dispatch & { deliveryIds: string[] }>;
  pins: Map<string, string>;
  outcomes: Map<string, CarriedOutcome>;
  digests: Map<string, string[]>;
  dead: string[];
}

/** Sorts a message's ids by decision; an id an earlier message of the batch settled is skipped. */
function sortOnward(
  body: QueueMessage,
  decisions: ReadonlyMap<string, Decision>,
  settled: Set<string>,
): Onward {
  const onward: Onward = {
    dispatches: new Map(),
    pins: new Map(),
    outcomes: new Map(),
    digests: new Map(),
    dead: [],
  };
  for (const id of body.deliveryIds) {
    if (settled.has(id)) continue;
    settled.add(id);
    const decision = decisions.get(id) ?? { kind: 'done' };
    if (decision.kind === 'done') continue;
    if (decision.kind === 'dead') {
      onward.dead.push(id);
      continue;
    }
    if ('pin' in decision && decision.pin) onward.pins.set(id, decision.pin);
    if (decision.kind === 'carry') onward.outcomes.set(id, decision.outcome);
    const items = body.digests?.[id];
    if (items) onward.digests.set(id, items);
    // A retry counts an attempt; waiting and carrying an answer do not.
    const attempt = decision.kind === 'retry' ? body.attempt + 1 : body.attempt;
    const key = `${attempt}:${decision.delaySeconds}`;
    const dispatch = onward.dispatches.get(key) ?? {
      deliveryIds: [],
      attempt,
      delaySeconds: decision.delaySeconds,
      ...(body.at !== undefined ? { at: body.at } : {}),
    };
    dispatch.deliveryIds.push(id);
    onward.dispatches.set(key, dispatch);
  }
  return onward;
}

/** The message can simply be retried as it is: every id retries alike, and nothing new travels. */
function retriesWhole(body: QueueMessage, onward: Onward): number | undefined {
  const [only, ...others] = [...onward.dispatches.values()];
  const plain = !body.pins && !body.outcomes && onward.pins.size === 0 && onward.outcomes.size === 0;
  if (!only || others.length > 0 || onward.dead.length > 0 || !plain) return undefined;
  const everyId = only.deliveryIds.length === body.deliveryIds.length && only.attempt === body.attempt + 1;
  return everyId ? only.delaySeconds : undefined;
}

/**
 * Acks a message whose deliveries are all done. When every delivery of a message retries alike
 * the message itself is retried; otherwise only the unfinished deliveries go on in new messages
 * (with the provider they are pinned to and any answer D1 could not take yet), so a partial
 * failure never resends what already went out; spent ones go to the dead-letter queue.
 */
export async function settleMessage(
  services: Services,
  channel: Channel,
  { message, body }: { message: Message<unknown>; body: QueueMessage },
  decisions: ReadonlyMap<string, Decision>,
  settled: Set<string>,
): Promise<void> {
  const onward = sortOnward(body, decisions, settled);
  const whole = retriesWhole(body, onward);
  if (whole !== undefined) {
    message.retry({ delaySeconds: whole });
    return;
  }
  const dispatches = [...onward.dispatches.values()].map((d) => ({
    ...d,
    pins: onward.pins,
    outcomes: onward.outcomes,
    digests: onward.digests,
  }));
  const sent = await sendToQueue(services.env, channel, dispatches, 'consumer');
  const dead =
    sent.unsent.length === 0 && onward.dead.length > 0
      ? await sendToQueue(
          services.env,
          channel,
          [{ deliveryIds: onward.dead, attempt: body.attempt + 1 }],
          'consumer',
          {
            deadLetter: true,
          },
        )
      : { unsent: [] };
  if (sent.unsent.length > 0 || dead.unsent.length > 0) {
    message.retry({ delaySeconds: REQUEUE_FAILURE_RETRY_SECONDS });
    return;
  }
  message.ack();
}
