import type { DeliveryToSend } from '../../domain/delivery';
import {
  hasAttemptsLeft,
  MAX_QUEUE_DELAY_SECONDS,
  retryDelaySeconds,
  scaledDelaySeconds,
} from '../../domain/retry';
import { log } from '../../lib/log';
import { providersFor } from '../../providers/registry';
import type { SendResult } from '../../providers/types';
import { raiseAlert } from '../operations/alerts';
import { configOf, contactOf, type DeliveryBatch, type Pending } from './batch';
import { composeMessage } from './compose';
import { cleanupFor } from './contact-cleanup';
import { type ChainResult, sendWithFailover } from './failover';

/** How many deliveries of a batch are in flight to providers at once. */
const CONCURRENCY = 8;

/** How long a delivery may wait on open circuits without it counting as attempts. */
const CIRCUIT_WAIT_HORIZON_MS = 24 * 3600 * 1000;

/** Step 8: every allowed delivery is composed and sent through the provider chain, a few at a time. */
export async function sendAllowed(batch: DeliveryBatch): Promise<void> {
  for (let i = 0; i < batch.todo.length; i += CONCURRENCY) {
    await Promise.all(
      batch.todo.slice(i, i + CONCURRENCY).map(async (delivery) => {
        batch.pending.set(delivery.id, await sendOne(batch, delivery));
      }),
    );
  }
}

async function sendOne(batch: DeliveryBatch, delivery: DeliveryToSend): Promise<Pending> {
  const { services } = batch;
  const started = Date.now();
  const composed = await composeMessage(
    services,
    delivery,
    contactOf(batch, delivery),
    configOf(batch, delivery),
  );
  if (!composed.ok) {
    return {
      outcome: { deliveryId: delivery.id, status: 'failed', reason: composed.reason, attempted: false },
      decision: { kind: 'done' },
    };
  }
  const answer = await sendWithFailover(
    providersFor(batch.chain, composed.address),
    {
      deliveryId: delivery.id,
      notificationId: delivery.notificationId,
      type: delivery.type,
      priority: delivery.priority,
      address: composed.address,
      message: composed.message,
    },
    services.registry.breaker,
    services.now,
  );
  await alertConfigErrors(batch, delivery, answer);
  logAttempt(delivery, answer, Date.now() - started);
  return (
    circuitWait(batch, delivery, answer) ??
    outcomeOfAnswer(batch, delivery, answer.result, answer.provider, composed.templateVersion)
  );
}

/** A provider that refused for its own configuration (bad key, unverified sender) alerts an operator. */
async function alertConfigErrors(batch: DeliveryBatch, delivery: DeliveryToSend, answer: ChainResult) {
  for (const t of answer.tried) {
    if (t.result !== 'circuit-open' && t.result.kind === 'permanent' && t.result.configError) {
      await raiseAlert(
        batch.services,
        `provider-error:${t.provider}`,
        `${t.provider} refused a ${delivery.channel} send: ${t.result.reason}`,
      );
    }
  }
}

function logAttempt(delivery: DeliveryToSend, { result, provider, tried }: ChainResult, durationMs: number) {
  log(result.kind === 'sent' ? 'info' : 'warn', 'delivery.attempt', {
    deliveryId: delivery.id,
    notificationId: delivery.notificationId,
    channel: delivery.channel,
    provider,
    providers: tried
      .map((t) => `${t.provider}:${t.result === 'circuit-open' ? 'circuit-open' : t.result.kind}`)
      .join(','),
    status: result.kind,
    reason: result.kind === 'sent' ? undefined : result.reason,
    attempt: delivery.attempts + 1,
    durationMs,
  });
}

/**
 * Nobody was called (every circuit open): not an attempt. Wait for the first circuit to let a
 * trial through, so a provider outage does not use up the attempts of every delivery that arrives
 * meanwhile (for a day at most: then open circuits count as attempts again, and it can end).
 */
function circuitWait(batch: DeliveryBatch, delivery: DeliveryToSend, { result, tried }: ChainResult) {
  const allOpen = tried.length > 0 && tried.every((t) => t.result === 'circuit-open');
  if (!allOpen || batch.services.now() - Date.parse(delivery.createdAt) >= CIRCUIT_WAIT_HORIZON_MS)
    return null;
  const delaySeconds = Math.max(
    1,
    Math.min(MAX_QUEUE_DELAY_SECONDS, result.kind === 'retryable' ? (result.retryAfterSeconds ?? 1) : 1),
  );
  return {
    outcome: {
      deliveryId: delivery.id,
      status: 'queued',
      reason: `every provider's circuit is open (${result.kind === 'sent' ? '' : result.reason}); next try in ${delaySeconds}s`,
      attempted: false,
    },
    decision: { kind: 'wait', delaySeconds },
  } satisfies Pending;
}

/** A provider's answer as an outcome to record and what happens to the delivery next. */
function outcomeOfAnswer(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
  result: SendResult,
  provider: string,
  templateVersion: string,
): Pending {
  const base = { deliveryId: delivery.id, provider, templateVersion, attempted: true };
  switch (result.kind) {
    case 'sent':
      return {
        outcome: {
          ...base,
          status: 'sent',
          ...(result.providerMessageId ? { providerMessageId: result.providerMessageId } : {}),
        },
        decision: { kind: 'done' },
      };
    case 'permanent':
      return {
        outcome: { ...base, status: 'failed', reason: result.reason },
        decision: { kind: 'done' },
        cleanup: cleanupFor(delivery, result),
        ...(result.code ? { code: result.code } : {}),
        ...(delivery.address?.channel === 'push' ? { platform: delivery.address.platform } : {}),
      };
    case 'retryable': {
      const attemptsMade = delivery.attempts + 1;
      if (!hasAttemptsLeft(delivery.channel, attemptsMade)) {
        const reason = `attempts exhausted (${attemptsMade}): ${result.reason}`;
        return { outcome: { ...base, status: 'failed', reason }, decision: { kind: 'dead', reason } };
      }
      const delaySeconds = scaledDelaySeconds(
        retryDelaySeconds(attemptsMade, result.retryAfterSeconds),
        Number(batch.services.env.RETRY_DELAY_SCALE ?? 1),
      );
      return {
        outcome: { ...base, status: 'queued', reason: `retry in ${delaySeconds}s: ${result.reason}` },
        decision: { kind: 'retry', delaySeconds },
      };
    }
  }
}
