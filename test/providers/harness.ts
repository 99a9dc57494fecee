// One harness for every provider test: a recording fake network, the exact request a provider
// must make, and tables of the provider's documented answers, each mapped to the outcome it must
// give. `answerTable` runs such a table: every row checks the request(s) and the outcome.
import { expect, it } from 'vitest';
import type { Address } from '../../src/domain/address';
import type { Priority } from '../../src/domain/channels';
import type { RenderedMessage } from '../../src/domain/message';
import type {
  Provider,
  ProviderDefinition,
  ProviderDeps,
  ProviderEnv,
  SendRequest,
  SendResult,
} from '../../src/providers/types';

export const FIXED_NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

/** What the fake network does for one call: answer, or fail the way the runtime does. */
export type Reply = Response | Error;

/** The replies of a fake network: one for the only call, or one chosen per call. */
export type Script = Reply | ((request: Request, index: number) => Reply | Promise<Reply>);

/** One call a provider made through the injected fetch. */
export interface RecordedCall {
  /** The request as the fetch saw it (its body already read into `bytes`). */
  request: Request;
  init: RequestInit | undefined;
  bytes: Uint8Array;
  /** The body as text, decoded from the bytes (workerd warns when `.text()` meets a form body). */
  body: string;
}

/** A fake fetch that records every call and answers from `script`. */
export function fakeFetch(script: Script) {
  const calls: RecordedCall[] = [];
  let used = false;
  const fetch: ProviderDeps['fetch'] = async (input, init) => {
    const request = new Request(input, init);
    const bytes = new Uint8Array(await request.arrayBuffer());
    calls.push({ request, init, bytes, body: new TextDecoder().decode(bytes) });
    let reply: Reply;
    if (typeof script === 'function') reply = await script(request, calls.length - 1);
    else if (used) throw new Error('a single reply answers one call: pass a function for more');
    else reply = script;
    used = true;
    if (reply instanceof Error) throw reply;
    return reply;
  };
  return { fetch, calls };
}

/** A clock tests move by hand. */
export function manualClock(startMs = FIXED_NOW) {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance(ms: number) {
      nowMs += ms;
    },
  };
}

/** A provider built from `env` on a fake network, with its calls. */
export function providerOn(
  definition: ProviderDefinition,
  env: ProviderEnv,
  script: Script,
  now: () => number = () => FIXED_NOW,
): { provider: Provider; calls: RecordedCall[] } {
  const { fetch, calls } = fakeFetch(script);
  return { provider: definition.create(env, { fetch, now }), calls };
}

/** Sends one request through a fresh provider and returns its result and calls. */
export async function sendOnce(
  definition: ProviderDefinition,
  env: ProviderEnv,
  request: SendRequest,
  script: Script,
  now?: () => number,
): Promise<{ result: SendResult; calls: RecordedCall[] }> {
  const { provider, calls } = providerOn(definition, env, script, now);
  return { result: await provider.send(request), calls };
}

/** The one call made; fails unless exactly one was. */
export function onlyCall(calls: RecordedCall[]): RecordedCall {
  expect(calls).toHaveLength(1);
  return calls[0] as RecordedCall;
}

/** A fetch for providers that must not call out (bindings, local refusals). */
export const noNetwork: ProviderDeps = {
  fetch: async () => {
    throw new Error('this provider must not use fetch');
  },
  now: () => FIXED_NOW,
};

/** A delivery of `message` to `address`, with fixed ids. */
export function deliveryOf<A extends Address>(
  address: A,
  message: RenderedMessage,
  overrides: { priority?: Priority; deliveryId?: string } = {},
): SendRequest<A> {
  return {
    deliveryId: overrides.deliveryId ?? 'dlv_01JTESTDELIVERY',
    notificationId: 'ntf_01JTESTNOTIFICATION',
    type: 'order.shipped',
    priority: overrides.priority ?? 'normal',
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

export function textResponse(status: number, body: string | null, headers: Record<string, string> = {}) {
  return new Response(body, { status, headers });
}

/** The runtime's timeout abort. */
export function timeoutError(): Error {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

/** What a result must be; flags not named must be absent, and so must a code or id not named. */
export interface Outcome {
  kind: SendResult['kind'];
  code?: string;
  providerMessageId?: string;
  retryAfterSeconds?: number;
  invalidAddress?: boolean;
  optOut?: boolean;
  configError?: boolean;
  /** The exact reason, or a pattern it must match. */
  reason?: string | RegExp;
}

/**
 * Asserts a result strictly: kind, code, id, delay, every permanent flag and a loggable reason. An
 * unknown outcome carries a reason and nothing else.
 */
export function expectOutcome(result: SendResult, expected: Outcome, label = ''): void {
  expect(result.kind, label).toBe(expected.kind);
  if (result.kind === 'sent') {
    expect(result.providerMessageId, `${label} providerMessageId`).toBe(expected.providerMessageId);
    return;
  }
  expect(result.reason.length, `${label} reason`).toBeGreaterThan(0);
  expect(result.reason.length, `${label} reason`).toBeLessThanOrEqual(300);
  if (typeof expected.reason === 'string') expect(result.reason, label).toBe(expected.reason);
  else if (expected.reason) expect(result.reason, label).toMatch(expected.reason);
  if (result.kind === 'unknown') {
    expect(Object.keys(result).sort(), `${label} fields`).toEqual(['kind', 'reason']);
    return;
  }
  expect(result.code, `${label} code`).toBe(expected.code);
  if (result.kind === 'retryable') {
    expect(result.retryAfterSeconds, `${label} retryAfterSeconds`).toBe(expected.retryAfterSeconds);
    return;
  }
  expect(Boolean(result.invalidAddress), `${label} invalidAddress`).toBe(Boolean(expected.invalidAddress));
  expect(Boolean(result.optOut), `${label} optOut`).toBe(Boolean(expected.optOut));
  expect(Boolean(result.configError), `${label} configError`).toBe(Boolean(expected.configError));
}

/** The body a request must carry, read the way its content type is written. */
export type ExpectedBody =
  | { json: unknown }
  | { form: [string, string][] }
  | { multipart: [string, string][] }
  | { check(call: RecordedCall): void | Promise<void> };

/** The exact request a provider must make. */
export interface ExactRequest {
  url: string;
  method?: 'POST';
  /** Every header sent, names in lower case; a RegExp where a value varies (signatures, boundaries). */
  headers: Record<string, string | RegExp>;
  body: ExpectedBody;
}

/** The body parsed as JSON. */
export const jsonOf = (call: RecordedCall): unknown => JSON.parse(call.body);

/** An `application/x-www-form-urlencoded` body as ordered fields. */
export const formOf = (call: RecordedCall): [string, string][] => [...new URLSearchParams(call.body)];

/** A `multipart/form-data` body as ordered fields. */
export async function multipartOf(call: RecordedCall): Promise<[string, string][]> {
  const type = call.request.headers.get('content-type') ?? '';
  const form = await new Response(call.bytes, { headers: { 'content-type': type } }).formData();
  return [...form.entries()].map(([name, value]) => [name, String(value)]);
}

/**
 * Asserts one call is exactly the expected request, and that it went out under the one HTTP
 * policy: a timeout signal, and redirects never followed.
 */
export async function expectRequest(call: RecordedCall | undefined, expected: ExactRequest): Promise<void> {
  if (!call) throw new Error(`no call was made to ${expected.url}`);
  expect(call.request.url).toBe(expected.url);
  expect(call.request.method).toBe(expected.method ?? 'POST');
  expect(call.request.redirect).toBe('manual');
  expect(call.init?.signal).toBeInstanceOf(AbortSignal);
  const sent = Object.fromEntries(call.request.headers.entries());
  expect(Object.keys(sent).sort()).toEqual(Object.keys(expected.headers).sort());
  for (const [name, value] of Object.entries(expected.headers)) {
    if (typeof value === 'string') expect(sent[name], name).toBe(value);
    else expect(sent[name], name).toMatch(value);
  }
  const body = expected.body;
  if ('json' in body) expect(jsonOf(call)).toEqual(body.json);
  else if ('form' in body) expect(formOf(call)).toEqual(body.form);
  else if ('multipart' in body) expect(await multipartOf(call)).toEqual(body.multipart);
  else await body.check(call);
}

/** A provider under test: how it is built and what it is asked to send. */
export interface ProviderCase {
  definition: ProviderDefinition;
  /** Vars and secrets; called per row, so keys made in `beforeAll` can be used. */
  env: () => ProviderEnv;
  request: () => SendRequest;
  /** The exact requests every row must make, in order. */
  exact: () => ExactRequest[] | Promise<ExactRequest[]>;
  /** Strings no result may contain: credentials and webhook URLs. */
  secrets?: () => string[];
  now?: () => number;
  /** Turns a row's reply into the script of the whole network (FCM answers its token endpoint here). */
  route?: (reply: Reply) => Script;
}

/** One documented answer (or network failure) and the outcome it must give. */
export interface AnswerRow {
  name: string;
  reply: Reply;
  expected: Outcome;
  /** More strings this row's result may not contain (the URL named by a network error). */
  forbid?: string[];
}

/** Registers one test per row: the exact requests go out, and the reply maps to its outcome. */
export function answerTable(target: ProviderCase, rows: AnswerRow[]): void {
  it.each(rows)('$name', async (row) => {
    const script = target.route ? target.route(row.reply) : row.reply;
    const { result, calls } = await sendOnce(
      target.definition,
      target.env(),
      target.request(),
      script,
      target.now,
    );
    const exact = await target.exact();
    expect(calls).toHaveLength(exact.length);
    for (const [index, expected] of exact.entries()) await expectRequest(calls[index], expected);
    expectOutcome(result, row.expected, row.name);
    for (const secret of [...(target.secrets?.() ?? []), ...(row.forbid ?? [])]) {
      expect(JSON.stringify(result), row.name).not.toContain(secret);
    }
  });
}

/**
 * The failures of the network every provider must classify, with a reason that never repeats the
 * URL it called: `retryable` only where the request provably never left (a URL or scheme fetch
 * refuses, the subrequest limit, a failed name lookup the runtime names), `unknown` wherever it
 * may have (a timeout; workerd's `Network connection lost.`, which it also throws for a refused
 * connection; its opaque `internal error`, which is how it reports a failed DNS lookup).
 */
export function networkRows(url: string): AnswerRow[] {
  const urlIn = (reason: string) => new RegExp(`^network error: ${reason}: \\[(url|redacted)\\]$`);
  const lost = 'Network connection lost.';
  // [name, what fetch throws, the outcome, its reason (`network error: <message>` when absent)]
  const rows: [string, Error, Outcome['kind'], (string | RegExp)?][] = [
    [
      'a URL fetch cannot load (never sent)',
      new TypeError(`Fetch API cannot load: ${url}`),
      'retryable',
      urlIn('Fetch API cannot load'),
    ],
    ['an invalid URL (never sent)', new TypeError(`Invalid URL: ${url}`), 'retryable', urlIn('Invalid URL')],
    ['the subrequest limit (never sent)', new Error('Too many subrequests.'), 'retryable'],
    [
      'a named DNS failure (never sent)',
      new TypeError('getaddrinfo ENOTFOUND api.provider.example'),
      'retryable',
    ],
    ['a connection lost (unknown: maybe sent)', new Error(lost), 'unknown'],
    ['a connection lost as a TypeError (unknown)', new TypeError(lost), 'unknown'],
    [
      "workerd's internal error (unknown)",
      new Error('internal error; reference = 0123abcd4567ef89'),
      'unknown',
    ],
    ['a timeout (unknown)', timeoutError(), 'unknown', 'timeout'],
    ['an abort (unknown)', new DOMException('The operation was aborted', 'AbortError'), 'unknown', 'timeout'],
  ];
  return rows.map(([name, reply, kind, reason]) => ({
    name,
    reply,
    expected: { kind, reason: reason ?? `network error: ${reply.message}` },
    forbid: [url],
  }));
}

/** Registers a test that each request is refused locally, without any call. */
export function refusalTable(
  target: Pick<ProviderCase, 'definition' | 'env'>,
  rows: { name: string; request: () => SendRequest; expected: Outcome }[],
): void {
  it.each(rows)('refuses $name without calling out', async (row) => {
    const { result, calls } = await sendOnce(target.definition, target.env(), row.request(), () => {
      throw new Error('a refused delivery must not call out');
    });
    expect(calls).toHaveLength(0);
    expectOutcome(result, row.expected, row.name);
  });
}
