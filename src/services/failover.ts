import type { Provider, SendRequest, SendResult } from '../providers/types';

export interface ChainResult {
  result: SendResult;
  /** The provider whose answer is `result` (the one that sent, or the last one tried). */
  provider: string;
  /** Every provider tried, in order, with its answer, for the history. */
  tried: { provider: string; result: SendResult }[];
}

/**
 * Sends through a provider chain: a retryable answer moves on to the next provider, a sent or
 * permanent one stops. When every provider is retryable the longest `retryAfterSeconds` wins, so
 * the queue does not come back before the slowest provider is ready.
 */
export async function sendWithFailover(
  chain: readonly Provider[],
  request: SendRequest,
): Promise<ChainResult> {
  const tried: ChainResult['tried'] = [];
  for (const provider of chain) {
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
    if (result.kind !== 'retryable') return { result, provider: provider.name, tried };
  }
  const last = tried.at(-1);
  if (!last) {
    return {
      result: { kind: 'permanent', reason: 'no provider serves this address', configError: true },
      provider: 'none',
      tried,
    };
  }
  const retryAfters = tried.map((t) =>
    t.result.kind === 'retryable' ? (t.result.retryAfterSeconds ?? 0) : 0,
  );
  const longest = Math.max(...retryAfters);
  const reason = tried
    .map((t) => `${t.provider}: ${t.result.kind === 'retryable' ? t.result.reason : t.result.kind}`)
    .join('; ');
  return {
    result: { kind: 'retryable', reason, ...(longest > 0 ? { retryAfterSeconds: longest } : {}) },
    provider: last.provider,
    tried,
  };
}
