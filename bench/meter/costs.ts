import type { Counts } from './metered-env';

/**
 * List prices in USD per million units (paid plans, beyond the included amounts; the monthly
 * plan fees and free allowances are left out so the figures are marginal costs).
 */
export const CLOUDFLARE_PRICES = {
  workersRequest: 0.3,
  queueOperation: 0.4,
  d1RowWritten: 1.0,
  d1RowRead: 0.001,
  doRequest: 0.15,
  doRowWritten: 1.0,
  doRowRead: 0.001,
  doGbSecond: 12.5,
  r2ClassB: 0.36,
  r2ClassA: 4.5,
} as const;

/** Durable Objects bill duration on 128 MB whatever the object uses. */
const DO_MEMORY_GB = 128 / 1024;

/**
 * Assumed billed wall time of one Recipient request. Measured locally the calls overlap (a batch
 * asks every recipient at once on 2 cores), so their wall time says nothing about the object's
 * own time; `decide` is a few synchronous SQLite statements.
 */
export const DO_MS_PER_REQUEST = 5;

/** What the Recipient objects did, measured from inside them. */
export interface DurableObjectStorageCounts {
  rowsWritten: number;
  rowsRead: number;
  setAlarmCalls: number;
}

/** One priced line: a quantity per delivery times a price per million. */
export interface CostLine {
  item: string;
  perDelivery: number;
  pricePerMillion: number;
  dollarsPerMillion: number;
  note?: string;
}

/** Queue operations: each 64 KB written, each message read (a retry is read again), each delete. */
export function queueOperations(c: Counts, unconsumedMessages: number): number {
  // A message the run did not consume will still be read and deleted once: count those 2 ops.
  return c.queueWriteUnits + c.queueMessagesRead + c.queueAcks + 2 * unconsumedMessages;
}

const line = (item: string, perDelivery: number, pricePerMillion: number, note?: string): CostLine => ({
  item,
  perDelivery,
  pricePerMillion,
  dollarsPerMillion: perDelivery * pricePerMillion,
  ...(note ? { note } : {}),
});

/** Cloudflare cost per million deliveries, line by line, from measured counts. */
export function cloudflareCost(
  total: Counts,
  storage: DurableObjectStorageCounts,
  deliveries: number,
  unconsumedMessages: number,
): CostLine[] {
  const per = (n: number) => n / deliveries;
  const p = CLOUDFLARE_PRICES;
  const invocations = total.fetchRequests + total.queueInvocations;
  return [
    line(
      'Workers requests (ingest requests + queue() invocations)',
      per(invocations),
      p.workersRequest,
      `${total.fetchRequests} fetch + ${total.queueInvocations} queue()`,
    ),
    line(
      'Queue operations (write + read + delete, per 64 KB)',
      per(queueOperations(total, unconsumedMessages)),
      p.queueOperation,
    ),
    line('D1 rows written (index rows included)', per(total.d1RowsWritten), p.d1RowWritten),
    line('D1 rows read', per(total.d1RowsRead), p.d1RowRead),
    line('Durable Object requests', per(total.doRequests), p.doRequest),
    line(
      'Durable Object rows written (SQLite storage)',
      per(storage.rowsWritten + storage.setAlarmCalls),
      p.doRowWritten,
      `${storage.rowsWritten} SQL rows + ${storage.setAlarmCalls} setAlarm (counted as 1 row each); the one state row per recipient is rewritten in place, never deleted by an alarm`,
    ),
    line(
      'Durable Object alarm invocations (estimate)',
      per(storage.setAlarmCalls),
      p.doRequest,
      'each alarm set fires once (a billed request)',
    ),
    line('Durable Object rows read', per(storage.rowsRead), p.doRowRead),
    line(
      `Durable Object duration (GB-s, 128 MB x ${DO_MS_PER_REQUEST} ms per request, assumed)`,
      per(total.doRequests + storage.setAlarmCalls) * DO_MEMORY_GB * (DO_MS_PER_REQUEST / 1000),
      p.doGbSecond,
    ),
    line('R2 Class B reads (get/head)', per(total.r2ClassB), p.r2ClassB),
    line('R2 Class A (list)', per(total.r2ClassA), p.r2ClassA, 'R2 bills list as Class A'),
  ];
}

export const sumDollars = (lines: readonly CostLine[]) => lines.reduce((s, l) => s + l.dollarsPerMillion, 0);

/**
 * The seed's AWS design per notification (one event = one channel = one delivery): API Gateway →
 * Lambda → EventBridge → SQS per type → worker Lambda → DynamoDB contacts and status; SNS/SES
 * excluded (the providers cost the same on both sides). Assumptions are stated per line.
 */
export const AWS_ASSUMPTIONS = {
  ingestLambdaMemoryMb: 128,
  ingestLambdaSeconds: 0.1,
  workerLambdaMemoryMb: 128,
  workerLambdaSeconds: 0.2,
  lambdaGbSecondPrice: 16.6667,
  sqsBatchSize: 1,
  contactReadsRru: 0.5,
  statusWritesWru: 2,
} as const;

export function awsCost(): CostLine[] {
  const a = AWS_ASSUMPTIONS;
  const ingestGbS = (a.ingestLambdaMemoryMb / 1024) * a.ingestLambdaSeconds;
  const workerGbS = (a.workerLambdaMemoryMb / 1024) * a.workerLambdaSeconds;
  return [
    line('API Gateway HTTP API requests (1 per event)', 1, 1.0),
    line('Lambda ingest requests', 1, 0.2),
    line(
      `Lambda ingest duration (${a.ingestLambdaMemoryMb} MB x ${a.ingestLambdaSeconds * 1000} ms = ${ingestGbS} GB-s)`,
      ingestGbS,
      a.lambdaGbSecondPrice,
    ),
    line('EventBridge custom events (1 per event)', 1, 1.0),
    line('SQS requests (send + receive + delete = 3 per message)', 3, 0.4),
    line(`Lambda worker requests (SQS batch size ${a.sqsBatchSize})`, 1 / a.sqsBatchSize, 0.2),
    line(
      `Lambda worker duration (${a.workerLambdaMemoryMb} MB x ${a.workerLambdaSeconds * 1000} ms incl. the provider call = ${workerGbS} GB-s)`,
      workerGbS,
      a.lambdaGbSecondPrice,
    ),
    line(
      `DynamoDB on-demand reads (contacts GetItem, eventually consistent <= 4 KB = ${a.contactReadsRru} RRU)`,
      a.contactReadsRru,
      0.25,
    ),
    line(
      `DynamoDB on-demand writes (${a.statusWritesWru} status writes <= 1 KB: created, sent)`,
      a.statusWritesWru,
      1.25,
    ),
  ];
}
