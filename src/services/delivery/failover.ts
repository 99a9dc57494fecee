import type { CircuitBreaker } from '../../lib/circuit-breaker';
import type { Provider, SendRequest, SendResult } from '../../providers/types';

export interface ChainResult {
  result: SendResult;
  /** The provider whose answer is `result` (the one that sent, or the last one tried). */
  provider: string;
  /** Every provider considered, in order, with its answer (or why it was skipped), for the history. */
  tried: { provider: string; result: SendResult | 'circuit-open' }[];
}

/** Delay before retrying when every provider's circuit is open and none says when to come back. */
const NO_PROVIDER_RETRY_SECONDS = 60;

/**
 * A configuration error (bad credentials, unverified sender) is the provider's problem, not the
 * message's: the next provider may send it, and the message should wait for a fix, not fail.
 */
const isProviderFault = (result: SendResult) =>
  result.kind === 'retryable' || (result.kind === 'permanent' && result.configError === true);

/**
 * Sends through a provider chain. A retryable answer or a configuration error moves on to the
 * next provider; a sent or other permanent answer stops, and so does an unknown one (a timeout
 * after the request left), which never fails over. A provider whose circuit is open is
 * skipped. When no provider sent, the delivery is retried after the longest `Retry-After` any
 * gave (or when the first open circuit lets a trial through).
 */
export async function sendWithFailover(
  chain: readonly Provider[],
  request: SendRequest,
  breaker: CircuitBreaker,
  now: () => number = Date.now,
): Promise<ChainResult> {
  const tried: ChainResult['tried'] = [];
  for (const provider of chain) {
    const key = `${provider.channel}:${provider.name}`;
    if (!breaker.allow(key, now())) {
      tried.push({ provider: provider.name, result: 'circuit-open' });
      continue;
    }
    let result: SendResult;
    try {
      result = await provider.send(request);
    } catch (error) {
      result = {
        kind: 'retryable',
        reason: `provider threw: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    tried.push({ provider: provider.name, result });
    if (result.kind === 'unknown') {
      // The request may have been delivered: another provider could deliver it a second time.
      breaker.failure(key, now());
      return { result, provider: provider.name, tried };
    }
    if (isProviderFault(result)) {
      breaker.failure(key, now());
      continue;
    }
    breaker.success(key);
    return { result, provider: provider.name, tried };
  }
  return {
    result: noProviderSent(chain, tried, breaker, now()),
    provider: tried.at(-1)?.provider ?? 'none',
    tried,
  };
}

function noProviderSent(
  chain: readonly Provider[],
  tried: ChainResult['tried'],
  breaker: CircuitBreaker,
  nowMs: number,
): SendResult {
  if (chain.length === 0) {
    return {
      kind: 'retryable',
      reason: 'no enabled provider serves this address',
      retryAfterSeconds: NO_PROVIDER_RETRY_SECONDS,
    };
  }
  const answers = tried.flatMap((t) => (t.result === 'circuit-open' ? [] : [t.result]));
  const waits = answers.map((r) => (r.kind === 'retryable' ? (r.retryAfterSeconds ?? 0) : 0));
  const circuitWaits = chain.map((p) => Math.ceil(breaker.retryInMs(`${p.channel}:${p.name}`, nowMs) / 1000));
  const longest =
    answers.length > 0
      ? Math.max(...waits)
      : Math.max(1, Math.min(...circuitWaits.filter((w) => w > 0), NO_PROVIDER_RETRY_SECONDS));
  const reason = tried
    .map(
      (t) =>
        `${t.provider}: ${t.result === 'circuit-open' ? 'circuit open' : t.result.kind === 'sent' ? 'sent' : t.result.reason}`,
    )
    .join('; ');
  return { kind: 'retryable', reason, ...(longest > 0 ? { retryAfterSeconds: longest } : {}) };
}
