import type { Env } from '../../src/config/env';
import { rsaPrivateKeyPem } from '../../test/providers/push/helpers';

/**
 * Counting proxies around the Worker's bindings, so a scenario can say how many billed operations
 * each delivery costs. Every count is what the platform bills, taken where the platform reports it:
 * D1 rows from each statement's `meta`, queue messages per send, one request per Durable Object
 * RPC call, one R2 operation per call that reaches the bucket (the template cache hides the rest),
 * one subrequest per outbound fetch (answered by a fake network, see `meterFetch`).
 */

/** D1 usage of one kind of statement (keyed by the start of its SQL). */
export interface StatementUsage {
  statements: number;
  rowsWritten: number;
  rowsRead: number;
}

/** Everything counted since the meter was made (or last reset). */
export interface Counts {
  /** Calls into D1 (`run`/`all`/`first`/`raw` = 1, `batch` = 1): round trips, not billed. */
  d1Calls: number;
  d1Statements: number;
  d1RowsWritten: number;
  d1RowsRead: number;
  /** Sum of D1's own `meta.duration` (ms): the time the database was busy. */
  d1BusyMs: number;
  d1ByStatement: Record<string, StatementUsage>;
  /** Producer side: messages written, and 64 KB units written (what Queues bills). */
  queueMessagesWritten: number;
  queueWriteUnits: number;
  queueSendCalls: number;
  /** Messages written, by binding (QUEUE_EMAIL, QUEUE_TOPICS ...). */
  queueWrittenByBinding: Record<string, number>;
  /** Consumer side, recorded by the scenario: messages handed to queue(), acked, retried. */
  queueMessagesRead: number;
  queueAcks: number;
  queueRetries: number;
  /** Durable Object RPC calls (each is one billed request) and their summed wall time. */
  doRequests: number;
  doWallMs: number;
  doByMethod: Record<string, number>;
  /** R2 Class B (get, head) and Class A (list, put, delete ...) operations, which keys were read and which prefixes listed. */
  r2ClassB: number;
  r2ClassA: number;
  r2ByMethod: Record<string, number>;
  r2KeysRead: Record<string, number>;
  r2PrefixesListed: Record<string, number>;
  /** Outbound fetch() subrequests, by host. */
  subrequests: number;
  subrequestHosts: Record<string, number>;
  /** Worker invocations: fetch requests, queue() batches, scheduled() ticks. */
  fetchRequests: number;
  queueInvocations: number;
  cronInvocations: number;
}

export const emptyCounts = (): Counts => ({
  d1Calls: 0,
  d1Statements: 0,
  d1RowsWritten: 0,
  d1RowsRead: 0,
  d1BusyMs: 0,
  d1ByStatement: {},
  queueMessagesWritten: 0,
  queueWriteUnits: 0,
  queueSendCalls: 0,
  queueWrittenByBinding: {},
  queueMessagesRead: 0,
  queueAcks: 0,
  queueRetries: 0,
  doRequests: 0,
  doWallMs: 0,
  doByMethod: {},
  r2ClassB: 0,
  r2ClassA: 0,
  r2ByMethod: {},
  r2KeysRead: {},
  r2PrefixesListed: {},
  subrequests: 0,
  subrequestHosts: {},
  fetchRequests: 0,
  queueInvocations: 0,
  cronInvocations: 0,
});

/** Queues bill each 64 KB of a message as one operation. */
const QUEUE_UNIT_BYTES = 64 * 1024;

const R2_CLASS_B = new Set(['get', 'head']);
const R2_METHODS = new Set([
  'get',
  'head',
  'list',
  'put',
  'delete',
  'createMultipartUpload',
  'resumeMultipartUpload',
]);

const bump = (record: Record<string, number>, key: string, by = 1) => {
  record[key] = (record[key] ?? 0) + by;
};

/** A short, stable label for a statement: its SQL with whitespace collapsed, cut at 60 characters. */
export function statementLabel(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

/** Holds the counts; the proxies below write into it. */
export class Meter {
  counts: Counts = emptyCounts();

  reset(): void {
    this.counts = emptyCounts();
  }

  /** A deep copy of the counts now, for before/after differences. */
  snapshot(): Counts {
    return structuredClone(this.counts);
  }

  recordD1(label: string, meta: D1Meta | undefined): void {
    const c = this.counts;
    const written = meta?.rows_written ?? 0;
    const read = meta?.rows_read ?? 0;
    c.d1Statements += 1;
    c.d1RowsWritten += written;
    c.d1RowsRead += read;
    c.d1BusyMs += meta?.duration ?? 0;
    const usage = c.d1ByStatement[label] ?? { statements: 0, rowsWritten: 0, rowsRead: 0 };
    usage.statements += 1;
    usage.rowsWritten += written;
    usage.rowsRead += read;
    c.d1ByStatement[label] = usage;
  }
}

/** Wraps a prepared statement; `first` runs as `all` so D1's meta (rows read) is not lost. */
class MeteredStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    readonly label: string,
    private readonly meter: Meter,
  ) {}

  bind(...values: unknown[]): MeteredStatement {
    return new MeteredStatement(this.inner.bind(...values), this.label, this.meter);
  }

  async first<T = Record<string, unknown>>(column?: string): Promise<T | null> {
    const result = await this.all<Record<string, unknown>>();
    const row = result.results[0];
    if (!row) return null;
    return (column === undefined ? row : (row[column] ?? null)) as T | null;
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    this.meter.counts.d1Calls += 1;
    const result = await this.inner.run<T>();
    this.meter.recordD1(this.label, result.meta);
    return result;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    this.meter.counts.d1Calls += 1;
    const result = await this.inner.all<T>();
    this.meter.recordD1(this.label, result.meta);
    return result;
  }

  /** `raw` returns no meta: the statement is counted, its rows cannot be. */
  async raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[]> {
    this.meter.counts.d1Calls += 1;
    this.meter.recordD1(`${this.label} (raw, rows not reported)`, undefined);
    return (await this.inner.raw<T>(options as { columnNames: false })) as T[];
  }
}

/** D1 with every statement counted. */
export function meterD1(db: D1Database, meter: Meter): D1Database {
  const unwrap = (s: D1PreparedStatement | MeteredStatement) => (s instanceof MeteredStatement ? s.inner : s);
  const labelOf = (s: D1PreparedStatement | MeteredStatement) =>
    s instanceof MeteredStatement ? s.label : 'unmetered statement';
  const metered = {
    prepare: (sql: string) => new MeteredStatement(db.prepare(sql), statementLabel(sql), meter),
    batch: async <T = unknown>(statements: (D1PreparedStatement | MeteredStatement)[]) => {
      meter.counts.d1Calls += 1;
      const results = await db.batch<T>(statements.map(unwrap));
      results.forEach((result, i) => {
        const statement = statements[i];
        meter.recordD1(statement ? labelOf(statement) : 'batch', result.meta);
      });
      return results;
    },
    exec: async (sql: string) => {
      meter.counts.d1Calls += 1;
      const result = await db.exec(sql);
      // exec reports a statement count, not rows: counted as statements only.
      for (let i = 0; i < result.count; i += 1) meter.recordD1('exec (rows not reported)', undefined);
      return result;
    },
    withSession: () => {
      throw new Error('the meter does not wrap D1 sessions: add it to bench/meter/metered-env.ts');
    },
    dump: () => db.dump(),
  };
  return metered as unknown as D1Database;
}

/** A queue producer binding: `send` writes 1 message, `sendBatch` one per message (counted under `binding` too). */
export function meterQueue<T>(queue: Queue<T>, meter: Meter, binding = 'queue'): Queue<T> {
  const units = (body: unknown) =>
    Math.max(1, Math.ceil(new TextEncoder().encode(JSON.stringify(body)).byteLength / QUEUE_UNIT_BYTES));
  return {
    async send(body: T, options?: QueueSendOptions) {
      meter.counts.queueSendCalls += 1;
      meter.counts.queueMessagesWritten += 1;
      bump(meter.counts.queueWrittenByBinding, binding);
      meter.counts.queueWriteUnits += units(body);
      return queue.send(body, options);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<T>>, options?: QueueSendBatchOptions) {
      const list = [...messages];
      meter.counts.queueSendCalls += 1;
      meter.counts.queueMessagesWritten += list.length;
      bump(meter.counts.queueWrittenByBinding, binding, list.length);
      for (const m of list) meter.counts.queueWriteUnits += units(m.body);
      return queue.sendBatch(list, options);
    },
  } as Queue<T>;
}

/** The queue producer bindings the meter wraps: each channel's queue and dead-letter queue, and the topics'. */
const QUEUE_BINDINGS = [
  'QUEUE_EMAIL',
  'QUEUE_SMS',
  'QUEUE_PUSH',
  'QUEUE_CHAT',
  'QUEUE_WEBHOOK',
  'QUEUE_INAPP',
  'DLQ_EMAIL',
  'DLQ_SMS',
  'DLQ_PUSH',
  'DLQ_CHAT',
  'DLQ_WEBHOOK',
  'DLQ_INAPP',
  'QUEUE_TOPICS',
  'DLQ_TOPICS',
] as const satisfies readonly (keyof Env)[];

/**
 * A Durable Object namespace whose stubs count every RPC method call (and `fetch`) as one request,
 * which is how Durable Objects bill them.
 */
export function meterDurableObjects<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  meter: Meter,
): DurableObjectNamespace<T> {
  const wrapStub = (stub: DurableObjectStub<T>) =>
    new Proxy(
      {},
      {
        get(_target, prop) {
          if (prop === 'then') return undefined;
          if (prop === 'id' || prop === 'name') return Reflect.get(stub, prop);
          const method = String(prop);
          return async (...args: unknown[]) => {
            meter.counts.doRequests += 1;
            bump(meter.counts.doByMethod, method);
            const started = Date.now();
            try {
              // Reflect.apply: on an RPC stub, `fn.apply` would itself be taken for a remote method.
              const fn = Reflect.get(stub, prop) as (...a: unknown[]) => Promise<unknown>;
              return await Reflect.apply(fn, stub, args);
            } finally {
              // Date.now() moves across I/O in workerd, so this is the call's wall time.
              meter.counts.doWallMs += Date.now() - started;
            }
          };
        },
      },
    ) as DurableObjectStub<T>;
  return new Proxy(namespace, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'get' || prop === 'getByName') {
        return (...args: unknown[]) =>
          wrapStub((value as (...a: unknown[]) => DurableObjectStub<T>).apply(target, args));
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/** An R2 bucket counting each call that reaches it, by billing class. */
export function meterR2(bucket: R2Bucket, meter: Meter): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      const method = String(prop);
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (!R2_METHODS.has(method)) return fn;
      return (...args: unknown[]) => {
        if (R2_CLASS_B.has(method)) {
          meter.counts.r2ClassB += 1;
          bump(meter.counts.r2KeysRead, String(args[0]));
        } else {
          meter.counts.r2ClassA += 1;
          if (method === 'list') {
            bump(meter.counts.r2PrefixesListed, (args[0] as R2ListOptions | undefined)?.prefix ?? '');
          }
        }
        bump(meter.counts.r2ByMethod, method);
        return fn(...args);
      };
    },
  });
}

/** Answers one outbound request: the fake network behind one host. */
export type FakeHost = (request: Request) => Response | Promise<Response>;

/**
 * Replaces the global `fetch` (which the providers call) with a fake network while installed:
 * every outbound request is counted by host and answered by that host's fake, so no request
 * leaves the machine. A host without a fake gets a network error, as an unreachable host would
 * (its deliveries then do not end `sent`). Returns the function that puts the real fetch back.
 *
 * While installed, `AbortSignal.timeout` also gives a signal that never aborts: the fake answers
 * at once, so a provider's timeout cannot fire, but each one would still hold a timer for 10-15 s.
 * In production each queue() invocation has its own timers; here every batch runs inside the one
 * test, where workerd allows 10 000 live timers, and thousands of sends a minute would exceed it.
 */
export function meterFetch(meter: Meter, network: Readonly<Record<string, FakeHost>>): () => void {
  const original = globalThis.fetch;
  const originalTimeout = AbortSignal.timeout;
  AbortSignal.timeout = () => new AbortController().signal;
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const host = new URL(request.url).host;
    meter.counts.subrequests += 1;
    bump(meter.counts.subrequestHosts, host);
    const answer = network[host];
    if (!answer) throw new TypeError(`meter: no fake answer for ${host} (the meter never calls the network)`);
    return answer(request);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = original;
    AbortSignal.timeout = originalTimeout;
  };
}

/** Reads a form body as bytes (workerd warns when `.text()` meets a form content type). */
async function formOf(request: Request): Promise<URLSearchParams> {
  return new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
}

const jsonAnswer = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** The answer to a request a fake does not expect (path, method, credentials): it never ends `sent`. */
const refuse = (status: number, message: string) => jsonAnswer(status, { message: `meter fake: ${message}` });

const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

/** The contacts' webhook endpoint (a public HTTPS URL, as the SSRF guard requires). */
export const METER_WEBHOOK_URL = 'https://hooks.example.com/herald';

/**
 * The real providers the meter runs (one per channel), configured through env overrides, and the
 * fake network that gives each of their hosts its documented success answer. The FCM service
 * account's RSA key is generated here (RSASSA-PKCS1-v1_5, SHA-256, exported as PKCS#8 PEM), so
 * the provider signs a real JWT for its OAuth token request.
 */
export async function realProviders(): Promise<{
  env: Record<string, string>;
  network: Record<string, FakeHost>;
}> {
  const project = 'herald-meter';
  const accountSid = `AC${hex(16)}`;
  const privateKey = await rsaPrivateKeyPem();
  const env = {
    EMAIL_PROVIDERS: 'resend',
    RESEND_API_KEY: `re_meter_${hex(12)}`,
    EMAIL_FROM: 'Herald <noreply@example.com>',
    SMS_PROVIDERS: 'twilio',
    TWILIO_ACCOUNT_SID: accountSid,
    TWILIO_AUTH_TOKEN: hex(16),
    TWILIO_FROM: '+15005550006',
    PUSH_PROVIDERS: 'fcm',
    FCM_SERVICE_ACCOUNT: JSON.stringify({
      type: 'service_account',
      project_id: project,
      private_key_id: 'meter-key-1',
      private_key: privateKey,
      client_email: `herald@${project}.iam.gserviceaccount.com`,
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
    CHAT_PROVIDERS: 'slack',
    WEBHOOK_PROVIDERS: 'webhook',
    WEBHOOK_SIGNING_SECRET: `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))}`,
  };
  let tokens = 0;
  const post = (request: Request, path: RegExp) =>
    request.method === 'POST' && path.test(new URL(request.url).pathname);
  const network: Record<string, FakeHost> = {
    // https://resend.com/docs/api-reference/emails/send-email: 200 { "id": "<uuid>" }
    'api.resend.com': (request) =>
      post(request, /^\/emails$/) && request.headers.get('authorization') === `Bearer ${env.RESEND_API_KEY}`
        ? jsonAnswer(200, { id: crypto.randomUUID() })
        : refuse(401, 'unexpected resend request'),
    // https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource: 201, the message resource
    'api.twilio.com': async (request) => {
      const path = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
      if (!post(request, new RegExp(`^${path}$`))) return refuse(404, 'unexpected twilio request');
      if (request.headers.get('authorization') !== `Basic ${btoa(`${accountSid}:${env.TWILIO_AUTH_TOKEN}`)}`)
        return refuse(401, 'bad twilio credentials');
      const form = await formOf(request);
      const sid = `SM${hex(16)}`;
      const now = new Date().toUTCString();
      return jsonAnswer(201, {
        account_sid: accountSid,
        api_version: '2010-04-01',
        body: form.get('Body'),
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: form.get('From'),
        messaging_service_sid: null,
        num_media: '0',
        num_segments: '1',
        price: null,
        price_unit: 'USD',
        sid,
        status: 'queued',
        to: form.get('To'),
        uri: `${path.slice(0, -'.json'.length)}/${sid}.json`,
      });
    },
    // https://developers.google.com/identity/protocols/oauth2/service-account#callinganapi: the token JSON
    'oauth2.googleapis.com': async (request) => {
      if (!post(request, /^\/token$/)) return refuse(404, 'unexpected token request');
      const form = await formOf(request);
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || !form.get('assertion'))
        return jsonAnswer(400, { error: 'invalid_grant' });
      tokens += 1;
      return jsonAnswer(200, {
        access_token: `ya29.meter-${tokens}`,
        expires_in: 3599,
        token_type: 'Bearer',
      });
    },
    // https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send: 200, the message's name
    'fcm.googleapis.com': (request) =>
      post(request, new RegExp(`^/v1/projects/${project}/messages:send$`)) &&
      request.headers.get('authorization')?.startsWith('Bearer ya29.meter-')
        ? jsonAnswer(200, { name: `projects/${project}/messages/0:${Date.now()}%${hex(8)}` })
        : refuse(401, 'unexpected fcm request'),
    // https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks: 200 "ok"
    'hooks.slack.com': (request) =>
      post(request, /^\/services\//)
        ? new Response('ok', { status: 200, headers: { 'content-type': 'text/html' } })
        : new Response('invalid_token', { status: 403 }),
    // A Standard Webhooks receiver: 204 once the signature headers are there.
    [new URL(METER_WEBHOOK_URL).host]: (request) =>
      request.method === 'POST' && request.headers.get('webhook-signature')?.startsWith('v1,')
        ? new Response(null, { status: 204 })
        : new Response('missing signature', { status: 400 }),
  };
  return { env, network };
}

/** The env with D1, R2, the Durable Object namespaces and every queue producer (the topics' too) metered. */
export function meterEnv(env: Env, meter: Meter): Env {
  return {
    ...env,
    DB: meterD1(env.DB, meter),
    // The shards too: a user's deliveries and contact live in one of them.
    ...Object.fromEntries(
      Object.entries(env)
        .filter(([name, value]) => /^DB_\d+$/.test(name) && value !== undefined)
        .map(([name, value]) => [name, meterD1(value as D1Database, meter)]),
    ),
    TEMPLATES: meterR2(env.TEMPLATES, meter),
    ...(env.ARCHIVE ? { ARCHIVE: meterR2(env.ARCHIVE, meter) } : {}),
    RECIPIENT: meterDurableObjects(env.RECIPIENT, meter),
    INBOX: meterDurableObjects(env.INBOX, meter),
    ...Object.fromEntries(
      QUEUE_BINDINGS.map((name) => [name, meterQueue(env[name] as Queue<unknown>, meter, name)]),
    ),
  };
}

/** The sum of two sets of counts (say, ingest and delivery of the same notifications). */
export function addCounts(a: Counts, b: Counts): Counts {
  const out = emptyCounts();
  const addRecords = (x: Record<string, number>, y: Record<string, number>) => {
    const sum: Record<string, number> = { ...x };
    for (const [k, v] of Object.entries(y)) bump(sum, k, v);
    return sum;
  };
  for (const key of Object.keys(out) as (keyof Counts)[]) {
    const x = a[key];
    const y = b[key];
    if (typeof x === 'number' && typeof y === 'number') (out[key] as number) = x + y;
  }
  out.doByMethod = addRecords(a.doByMethod, b.doByMethod);
  out.r2ByMethod = addRecords(a.r2ByMethod, b.r2ByMethod);
  out.r2KeysRead = addRecords(a.r2KeysRead, b.r2KeysRead);
  out.r2PrefixesListed = addRecords(a.r2PrefixesListed, b.r2PrefixesListed);
  out.subrequestHosts = addRecords(a.subrequestHosts, b.subrequestHosts);
  out.queueWrittenByBinding = addRecords(a.queueWrittenByBinding, b.queueWrittenByBinding);
  out.d1ByStatement = structuredClone(a.d1ByStatement);
  for (const [k, v] of Object.entries(b.d1ByStatement)) {
    const usage = out.d1ByStatement[k] ?? { statements: 0, rowsWritten: 0, rowsRead: 0 };
    usage.statements += v.statements;
    usage.rowsWritten += v.rowsWritten;
    usage.rowsRead += v.rowsRead;
    out.d1ByStatement[k] = usage;
  }
  return out;
}
