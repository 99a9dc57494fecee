import { expect } from 'vitest';
import type { Address } from '../../../src/domain/address';
import type { RenderedMessage } from '../../../src/domain/message';
import type { ProviderDeps, SendRequest, SendResult } from '../../../src/providers/types';

/** One call the provider made through the injected fetch. */
export interface RecordedCall {
  request: Request;
  init: RequestInit | undefined;
  body: string;
}

/** A fake fetch that records every call and answers with `respond`. */
export function recordingFetch(respond: (request: Request) => Response | Promise<Response>) {
  const calls: RecordedCall[] = [];
  const fetch: ProviderDeps['fetch'] = async (input, init) => {
    const request = new Request(input, init);
    // Decode bytes directly: workerd warns when .text() reads a form-encoded body.
    calls.push({ request, init, body: new TextDecoder().decode(await request.clone().arrayBuffer()) });
    return respond(request);
  };
  return { fetch, calls };
}

export const FIXED_NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

export function depsWith(fetch: ProviderDeps['fetch'], now = () => FIXED_NOW): ProviderDeps {
  return { fetch, now };
}

export function sendRequest<A extends Address>(address: A, message: RenderedMessage): SendRequest<A> {
  return {
    deliveryId: 'dlv_01JTESTDELIVERY',
    notificationId: 'ntf_01JTESTNOTIFICATION',
    type: 'order.shipped',
    priority: 'normal',
    address,
    message,
  };
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A fetch that fails like the runtime does when the connection drops or the timeout fires. */
export function failingFetch(error: Error): ProviderDeps['fetch'] {
  return async () => {
    throw error;
  };
}

export function timeoutError(): Error {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

/** What a table row expects; flags not named are expected to be absent or false. */
export interface Outcome {
  kind: SendResult['kind'];
  code?: string;
  providerMessageId?: string;
  retryAfterSeconds?: number;
  invalidAddress?: boolean;
  optOut?: boolean;
  configError?: boolean;
}

/** Asserts the class of a result strictly: kind, code, ids, delay and every permanent flag. */
export function expectOutcome(result: SendResult, expected: Outcome): void {
  expect(result.kind).toBe(expected.kind);
  if (expected.code !== undefined) expect(result).toHaveProperty('code', expected.code);
  if ('providerMessageId' in expected)
    expect(result).toHaveProperty('providerMessageId', expected.providerMessageId);
  if (result.kind === 'retryable') expect(result.retryAfterSeconds).toBe(expected.retryAfterSeconds);
  if (result.kind === 'permanent') {
    expect(Boolean(result.invalidAddress), 'invalidAddress').toBe(Boolean(expected.invalidAddress));
    expect(Boolean(result.optOut), 'optOut').toBe(Boolean(expected.optOut));
    expect(Boolean(result.configError), 'configError').toBe(Boolean(expected.configError));
  }
  if (result.kind !== 'sent') {
    expect(result.reason.length).toBeGreaterThan(0);
    expect(result.reason.length).toBeLessThanOrEqual(300);
  }
}
