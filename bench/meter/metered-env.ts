import type { Env } from '../../src/env';

/**
 * Counting proxies around the Worker's bindings, so a scenario can say how many billed operations
 * each delivery costs. Every count is what the platform bills, taken where the platform reports it:
 * D1 rows from each statement's `meta`, queue messages per send, one request per Durable Object
 * RPC call, one R2 operation per call that reaches the bucket (the template cache hides the rest).
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
  /** Consumer side, recorded by the scenario: messages handed to queue(), acked, retried. */
  queueMessagesRead: number;
  queueAcks: number;
  queueRetries: number;
  /** Durable Object RPC calls (each is one billed request) and their summed wall time. */
  doRequests: number;
  doWallMs: number;
  doByMethod: Record<string, number>;
  /** R2 Class B (get, head) and Class A (list, put, delete ...) operations, and which keys were read. */
  r2ClassB: number;
  r2ClassA: number;
  r2ByMethod: Record<string, number>;
  r2KeysRead: Record<string, number>;
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

/** A queue producer binding: `send` writes 1 message, `sendBatch` one per message. */
export function meterQueue<T>(queue: Queue<T>, meter: Meter): Queue<T> {
  const units = (body: unknown) =>
    Math.max(1, Math.ceil(new TextEncoder().encode(JSON.stringify(body)).byteLength / QUEUE_UNIT_BYTES));
  return {
    async send(body: T, options?: QueueSendOptions) {
      meter.counts.queueSendCalls += 1;
      meter.counts.queueMessagesWritten += 1;
      meter.counts.queueWriteUnits += units(body);
      return queue.send(body, options);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<T>>, options?: QueueSendBatchOptions) {
      const list = [...messages];
      meter.counts.queueSendCalls += 1;
      meter.counts.queueMessagesWritten += list.length;
      for (const m of list) meter.counts.queueWriteUnits += units(m.body);
      return queue.sendBatch(list, options);
    },
  } as Queue<T>;
}

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
        }
        bump(meter.counts.r2ByMethod, method);
        return fn(...args);
      };
    },
  });
}

/** Counts outbound fetch() calls while installed; returns the function that uninstalls it. */
export function meterFetch(meter: Meter): () => void {
  const original = globalThis.fetch;
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    meter.counts.subrequests += 1;
    bump(meter.counts.subrequestHosts, URL.canParse(url) ? new URL(url).host : url);
    return original(input, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = original;
  };
}

/** The env with D1, R2, the Recipient namespace and every queue producer metered. */
export function meterEnv(env: Env, meter: Meter): Env {
  return {
    ...env,
    DB: meterD1(env.DB, meter),
    TEMPLATES: meterR2(env.TEMPLATES, meter),
    RECIPIENT: meterDurableObjects(env.RECIPIENT, meter),
    QUEUE_EMAIL: meterQueue(env.QUEUE_EMAIL, meter),
    QUEUE_SMS: meterQueue(env.QUEUE_SMS, meter),
    QUEUE_PUSH: meterQueue(env.QUEUE_PUSH, meter),
    QUEUE_CHAT: meterQueue(env.QUEUE_CHAT, meter),
    QUEUE_WEBHOOK: meterQueue(env.QUEUE_WEBHOOK, meter),
    DLQ_EMAIL: meterQueue(env.DLQ_EMAIL, meter),
    DLQ_SMS: meterQueue(env.DLQ_SMS, meter),
    DLQ_PUSH: meterQueue(env.DLQ_PUSH, meter),
    DLQ_CHAT: meterQueue(env.DLQ_CHAT, meter),
    DLQ_WEBHOOK: meterQueue(env.DLQ_WEBHOOK, meter),
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
  out.subrequestHosts = addRecords(a.subrequestHosts, b.subrequestHosts);
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
