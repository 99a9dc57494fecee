import { expect } from 'vitest';
import type { Address } from '../../../src/domain/address';
import type { RenderedMessage } from '../../../src/domain/message';
import type {
  ProviderDefinition,
  ProviderDeps,
  ProviderEnv,
  SendRequest,
  SendResult,
} from '../../../src/providers/types';

/** A fixed clock: 2025-03-04T05:06:07Z. */
export const NOW_MS = Date.UTC(2025, 2, 4, 5, 6, 7);

export const DELIVERY_ID = 'dlv_01jnabcdefghjkmnpqrstvwxyz';

export const UNSUBSCRIBE_HEADERS = {
  'List-Unsubscribe': '<https://herald.test/u/tok_123>, <mailto:unsubscribe@example.com?subject=tok_123>',
  'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
};

/** A fully rendered email with both bodies and the one-click unsubscribe headers. */
export function emailRequest(
  message: Partial<RenderedMessage> = {},
  address: Address = { channel: 'email', email: 'ada@example.org' },
): SendRequest {
  return {
    deliveryId: DELIVERY_ID,
    notificationId: 'ntf_01jnabcdefghjkmnpqrstvwxyz',
    type: 'invoice.paid',
    priority: 'normal',
    address,
    message: {
      subject: 'Your invoice is paid',
      html: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>',
      text: 'Thanks, Ada. Invoice #42 is paid.',
      headers: { ...UNSUBSCRIBE_HEADERS },
      ...message,
    },
  };
}

/** One call seen by the fake fetch, normalised to a Request plus the init it came with. */
export interface SeenCall {
  request: Request;
  init: RequestInit | undefined;
}

/** A fetch double that records every call and answers from a script (a Response or an error). */
export function scriptedFetch(...answers: (Response | Error | (() => Response))[]) {
  const calls: SeenCall[] = [];
  const fetch: ProviderDeps['fetch'] = async (input, init) => {
    calls.push({ request: new Request(input as RequestInfo, init), init });
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
    if (answer === undefined) throw new Error('no scripted answer');
    if (answer instanceof Error) throw answer;
    return typeof answer === 'function' ? answer() : answer;
  };
  return { fetch, calls };
}

export function deps(fetch: ProviderDeps['fetch']): ProviderDeps {
  return { fetch, now: () => NOW_MS };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** The parts of a result a classification test cares about; absent flags stay absent. */
export function classOf(result: SendResult): Record<string, unknown> {
  const picked: Record<string, unknown> = { kind: result.kind };
  if (result.kind === 'retryable' && result.retryAfterSeconds !== undefined) {
    picked.retryAfterSeconds = result.retryAfterSeconds;
  }
  if (result.kind === 'permanent') {
    if (result.invalidAddress) picked.invalidAddress = true;
    if (result.optOut) picked.optOut = true;
    if (result.configError) picked.configError = true;
  }
  return picked;
}

/** One row of an error table: the provider's answer and the class it must map to. */
export interface ErrorCase {
  name: string;
  response: () => Response;
  expected: Record<string, unknown>;
  code?: string;
}

/** Runs an error table against a provider built from `env`, checking class, code and reason hygiene. */
export async function expectErrorTable(
  definition: ProviderDefinition,
  env: ProviderEnv,
  secret: string,
  cases: ErrorCase[],
): Promise<void> {
  for (const row of cases) {
    const { fetch } = scriptedFetch(row.response);
    const result = await definition.create(env, deps(fetch)).send(emailRequest());
    expect(classOf(result), row.name).toEqual(row.expected);
    if (result.kind !== 'sent') {
      expect(result.reason.length, row.name).toBeLessThanOrEqual(300);
      expect(result.reason, row.name).not.toContain(secret);
      if (row.code !== undefined) expect(result.code, row.name).toBe(row.code);
    }
  }
}

/** Network failures and timeouts must be retryable, whatever the provider. */
export async function expectNetworkFailuresRetryable(definition: ProviderDefinition, env: ProviderEnv) {
  const failures = [
    new TypeError('fetch failed: connection reset'),
    new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    new DOMException('The operation was aborted', 'AbortError'),
  ];
  for (const failure of failures) {
    const { fetch } = scriptedFetch(failure);
    const result = await definition.create(env, deps(fetch)).send(emailRequest());
    expect(result.kind, failure.name).toBe('retryable');
  }
}

/** Deliveries that can never succeed are refused before any network call. */
export async function expectLocalRefusals(definition: ProviderDefinition, env: ProviderEnv) {
  const refused: SendRequest[] = [
    emailRequest({}, { channel: 'sms', phone: '+15555550100' }),
    emailRequest({ subject: undefined }),
    emailRequest({ html: undefined, text: undefined }),
  ];
  for (const request of refused) {
    const { fetch, calls } = scriptedFetch(json(200, {}));
    const result = await definition.create(env, deps(fetch)).send(request);
    expect(result.kind).toBe('permanent');
    expect(calls).toHaveLength(0);
  }
}

/** Case-insensitive header lookup on a plain record. */
export function headerNames(request: Request): string[] {
  return [...request.headers.keys()].sort();
}
