import type { DeliveryToSend } from '../../domain/delivery';
import type { ProviderError } from '../../domain/metric-counters';
import {
  hasAttemptsLeft,
  MAX_QUEUE_DELAY_SECONDS,
  retryDelaySeconds,
  scaledDelaySeconds,
} from '../../domain/retry';
import type { TypeConfig } from '../../domain/type-config';
import { log } from '../../lib/log';
import { providersFor } from '../../providers/registry';
import type { Provider } from '../../providers/types';
import { raiseAlert } from '../operations/alerts';
import { configOf, contactOf, type DeliveryBatch, type Pending } from './batch';
import { composeMessage } from './compose';
import { cleanupFor } from './contact-cleanup';
import { digestContext } from './digest-fold';
import { type ChainResult, sendWithFailover } from './failover';
import { recordAnswer } from './record';

/** How many deliveries of a batch are in flight to providers at once. */
const CONCURRENCY = 8;

/** How long a delivery may wait on open circuits without it counting as attempts. */
const CIRCUIT_WAIT_HORIZON_MS = 24 * 3600 * 1000;

/** Delay before trying again a delivery whose own preparation failed (a template read, say). */
const PREPARE_RETRY_SECONDS = 30;

/**
 * Step 8: every allowed delivery is composed and sent through the provider chain, a few at a
 * time. Each one stands alone: a failure preparing one (a template read, a render) retries that
 * one, and each provider answer is recorded as soon as it arrives, so nothing that fails later in
 * the batch can make an answered delivery go out again.
 */
export async function sendAllowed(batch: DeliveryBatch): Promise<void> {
  for (let i = 0; i < batch.todo.length; i += CONCURRENCY) {
    // Every send in flight finishes (and records its answer) before a fatal error ends the batch.
    const settled = await Promise.allSettled(
      batch.todo.slice(i, i + CONCURRENCY).map(async (delivery) => {
        batch.pending.set(delivery.id, await sendOne(batch, delivery));
      }),
    );
    const fatal = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (fatal) throw fatal.reason;
  }
}

async function sendOne(batch: DeliveryBatch, delivery: DeliveryToSend): Promise<Pending> {
  let answered: { pending: Pending; answer: ChainResult };
  try {
    const result = await composeAndSend(batch, delivery);
    if ('outcome' in result) return result;
    answered = result;
  } catch (error) {
    if (isFatal(error)) throw error;
    log('error', 'delivery.prepare_failed', {
      deliveryId: delivery.id,
      channel: delivery.channel,
      error: String(error),
    });
    return {
      outcome: {
        deliveryId: delivery.id,
        status: 'queued',
        reason: `not sent: ${String(error)}`,
        attempted: false,
      },
      decision: { kind: 'retry', delaySeconds: PREPARE_RETRY_SECONDS },
    };
  }
  return recordAnswer(batch, answered.pending);
}

/** An error that ends the whole batch, as the death of the consumer would (fault injection). */
function isFatal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { fatal?: unknown }).fatal === true;
}

async function composeAndSend(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
): Promise<Pending | { pending: Pending; answer: ChainResult }> {
  const { services } = batch;
  const started = Date.now();
  const config = configOf(batch, delivery);
  const digest = batch.digests.get(delivery.id);
  const composed = await composeMessage(
    services,
    delivery,
    contactOf(batch, delivery),
    config,
    digest ? { digest: await digestContext(services, digest) } : {},
  );
  if (!composed.ok) {
    return {
      outcome: { deliveryId: delivery.id, status: 'failed', reason: composed.reason, attempted: false },
      decision: { kind: 'done' },
    };
  }
  const answer = await sendWithFailover(
    chainFor(batch, delivery, composed.address),
    {
      deliveryId: delivery.id,
      notificationId: delivery.notificationId,
      type: delivery.type,
      ...(config.category ? { category: config.category } : {}),
      priority: delivery.priority,
      address: composed.address,
      message: composed.message,
    },
    services.registry.breaker,
    services.now,
  );
  await alertConfigErrors(batch, delivery, answer);
  logAttempt(delivery, answer, Date.now() - started);
  const pending =
    circuitWait(batch, delivery, answer) ??
    outcomeOfAnswer(batch, delivery, config, answer, composed.templateVersion);
  return { pending, answer };
}

/**
 * The providers that may take this delivery: the chain's for its address, or only the provider
 * its last unknown answer came from, so a repeat never goes to a second provider.
 */
function chainFor(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
  address: Parameters<typeof providersFor>[1],
) {
  const providers = providersFor(batch.chain, address);
  const pin = batch.pins.get(delivery.id);
  return pin ? providers.filter((p) => p.name === pin) : providers;
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
  const pin = batch.pins.get(delivery.id);
  return {
    outcome: {
      deliveryId: delivery.id,
      status: 'queued',
      reason: `every provider's circuit is open (${result.kind === 'sent' ? '' : result.reason}); next try in ${delaySeconds}s`,
      attempted: false,
    },
    decision: { kind: 'wait', delaySeconds, ...(pin ? { pin } : {}) },
  } satisfies Pending;
}

/** What every outcome of a provider's answer records: who answered, with which template. */
type AnswerBase = Omit<Pending['outcome'], 'status' | 'reason'>;

/** A provider's answer as an outcome to record and what happens to the delivery next. */
function outcomeOfAnswer(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
  config: TypeConfig,
  { result, provider, tried }: ChainResult,
  templateVersion: string,
): Pending {
  const errors = errorsOf(tried);
  const base = {
    deliveryId: delivery.id,
    provider,
    templateVersion,
    attempted: true,
    ...(errors.length ? { errors } : {}),
  };
  switch (result.kind) {
    case 'sent':
      return {
        outcome: {
          ...base,
          status: result.delivered ? 'delivered' : 'sent',
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
    case 'unknown':
      return unknownOutcome(
        batch,
        delivery,
        config,
        result.reason,
        base,
        providerNamed(batch, provider, tried),
      );
    case 'retryable':
      return retryOrDead(batch, delivery, result.reason, result.retryAfterSeconds, base);
  }
}

/** The providers that answered with an error, by class (an open circuit asked nobody: not one). */
function errorsOf(tried: ChainResult['tried']): ProviderError[] {
  return tried.flatMap(({ provider, result }) =>
    result === 'circuit-open' || result.kind === 'sent' ? [] : [{ provider, class: result.kind }],
  );
}

function providerNamed(
  batch: DeliveryBatch,
  name: string,
  tried: ChainResult['tried'],
): Provider | undefined {
  return tried.some((t) => t.provider === name) ? batch.chain.find((p) => p.name === name) : undefined;
}

/**
 * The request left and no answer came: the provider may have delivered it. Retried only on that
 * provider, and only where a repeat is harmless (it takes an idempotency key) or the type accepts
 * the risk (`unknownOutcome: retry`, the default for critical); otherwise it ends `unknown`.
 */
function unknownOutcome(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
  config: TypeConfig,
  reason: string,
  base: AnswerBase,
  provider: Provider | undefined,
): Pending {
  const policy = config.unknownOutcome ?? (delivery.priority === 'critical' ? 'retry' : 'give-up');
  const name = base.provider ?? 'the provider';
  if (provider?.idempotent || policy === 'retry') {
    const key = provider?.idempotent ? 'with the same idempotency key' : 'without an idempotency key';
    const next = retryOrDead(
      batch,
      delivery,
      `unknown outcome: ${reason}; retrying on ${name} ${key}`,
      undefined,
      base,
    );
    return next.decision.kind === 'retry' && base.provider
      ? { ...next, decision: { ...next.decision, pin: base.provider } }
      : next;
  }
  return {
    outcome: {
      ...base,
      status: 'unknown',
      reason: `unknown outcome: ${reason}; not retried (${name} takes no idempotency key)`,
    },
    decision: { kind: 'done' },
  };
}

function retryOrDead(
  batch: DeliveryBatch,
  delivery: DeliveryToSend,
  reason: string,
  retryAfterSeconds: number | undefined,
  base: AnswerBase,
): Pending {
  const attemptsMade = delivery.attempts + 1;
  if (!hasAttemptsLeft(delivery.channel, attemptsMade)) {
    const dead = `attempts exhausted (${attemptsMade}): ${reason}`;
    return { outcome: { ...base, status: 'failed', reason: dead }, decision: { kind: 'dead', reason: dead } };
  }
  const delaySeconds = scaledDelaySeconds(
    retryDelaySeconds(attemptsMade, retryAfterSeconds),
    Number(batch.services.env.RETRY_DELAY_SCALE ?? 1),
  );
  // A delivery pinned to a provider stays pinned until that provider answers for sure.
  const pin = batch.pins.get(delivery.id);
  return {
    outcome: { ...base, status: 'queued', reason: `retry in ${delaySeconds}s: ${reason}` },
    decision: { kind: 'retry', delaySeconds, ...(pin ? { pin } : {}) },
  };
}
