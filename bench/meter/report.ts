import {
  AWS_ASSUMPTIONS,
  awsCost,
  CLOUDFLARE_PRICES,
  type CostLine,
  cloudflareCost,
  type DurableObjectStorageCounts,
  queueOperations,
  sumDollars,
} from './costs';
import type { Counts } from './metered-env';

/** One metered scenario: what was sent, and what it cost in operations. */
export interface ScenarioResult {
  name: string;
  notifications: number;
  deliveries: number;
  sent: number;
  statuses: Record<string, number>;
  /** Queue messages the ingest wrote. */
  messages: number;
  unconsumed: number;
  deadLettered: number;
  ingest: Counts;
  consume: Counts;
  total: Counts;
  storage: DurableObjectStorageCounts;
  /** D1 database growth in bytes while accepting, and while delivering (sandbox outbox included). */
  databaseGrowth: { ingest: number; delivery: number };
}

export interface MeterReport {
  notificationsPerScenario: number;
  perRequest: number;
  consumerBatch: number;
  scenarios: ScenarioResult[];
  cron: Counts;
}

/** Statements only the sandbox provider runs (it records what it would have sent). */
const SANDBOX_ONLY = /\boutbox\b/i;

/** Budgets from the issue, per delivered delivery. */
export const BUDGETS = {
  d1RowsWritten: 2,
  doRequests: 1,
  queueOps: 1,
  r2ReadsPerTemplatePerMinute: 1,
  dollarsPerMillion: 2,
  shareOfAws: 0.5,
} as const;

const fmt = (n: number, digits = 3) => {
  if (n === 0) return '0';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toPrecision(digits);
};
const usd = (n: number) => `$${n < 0.01 && n > 0 ? n.toPrecision(2) : n.toFixed(n >= 100 ? 0 : 3)}`;
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;

/** Figures per delivered delivery for one scenario. */
export function perDelivery(s: ScenarioResult) {
  const d = s.sent;
  const sandbox = Object.entries(s.total.d1ByStatement)
    .filter(([label]) => SANDBOX_ONLY.test(label))
    .reduce(
      (sum, [, u]) => ({ rowsWritten: sum.rowsWritten + u.rowsWritten, rowsRead: sum.rowsRead + u.rowsRead }),
      { rowsWritten: 0, rowsRead: 0 },
    );
  const sandboxRows = sandbox.rowsWritten;
  const cost = cloudflareCost(s.total, s.storage, d, s.unconsumed);
  const realCost = cloudflareCost(
    {
      ...s.total,
      d1RowsWritten: s.total.d1RowsWritten - sandbox.rowsWritten,
      d1RowsRead: s.total.d1RowsRead - sandbox.rowsRead,
    },
    s.storage,
    d,
    s.unconsumed,
  );
  return {
    workerInvocations: (s.total.fetchRequests + s.total.queueInvocations) / d,
    d1Statements: s.total.d1Statements / d,
    d1RowsWritten: s.total.d1RowsWritten / d,
    d1RowsWrittenRealProviders: (s.total.d1RowsWritten - sandboxRows) / d,
    d1RowsRead: s.total.d1RowsRead / d,
    queueOps: queueOperations(s.total, s.unconsumed) / d,
    doRequests: s.total.doRequests / d,
    doRowsWritten: (s.storage.rowsWritten + s.storage.setAlarmCalls) / d,
    r2ClassB: s.total.r2ClassB,
    r2ClassA: s.total.r2ClassA,
    maxReadsOfOneKey: Math.max(0, ...Object.values(s.total.r2KeysRead)),
    subrequests: s.total.subrequests / d,
    cost,
    dollars: sumDollars(cost),
    dollarsRealProviders: sumDollars(realCost),
  };
}

function costTable(lines: readonly CostLine[], unit: 'delivery' | 'notification'): string[] {
  const plural = unit === 'delivery' ? 'deliveries' : 'notifications';
  return [
    row(['item', `per ${unit}`, '$ per M units', `$ per M ${plural}`, 'note']),
    row(['---', '---:', '---:', '---:', '---']),
    ...lines.map((l) =>
      row([l.item, fmt(l.perDelivery, 4), usd(l.pricePerMillion), usd(l.dollarsPerMillion), l.note ?? '']),
    ),
    row(['**total**', '', '', `**${usd(sumDollars(lines))}**`, '']),
  ];
}

function statementTable(byStatement: Counts['d1ByStatement'], divisor: number, per = 'delivery'): string[] {
  const entries = Object.entries(byStatement).sort(
    (a, b) => b[1].rowsWritten - a[1].rowsWritten || b[1].statements - a[1].statements,
  );
  return [
    row(['statement', `statements / ${per}`, `rows written / ${per}`, `rows read / ${per}`]),
    row(['---', '---:', '---:', '---:']),
    ...entries.map(([label, u]) =>
      row([
        `\`${label.replace(/\|/g, '\\|')}\``,
        fmt(u.statements / divisor),
        fmt(u.rowsWritten / divisor),
        fmt(u.rowsRead / divisor),
      ]),
    ),
  ];
}

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

/** The meter's section of bench/results.md. */
export function renderReport(report: MeterReport): string {
  const out: string[] = [];
  const all = report.scenarios.find((s) => s.name === 'all channels, batch ingest');
  const single = report.scenarios.find((s) => s.name === 'all channels, single ingest');
  const aws = awsCost();
  const awsTotal = sumDollars(aws);

  out.push('## Operation meter (inside workerd, `npx vitest run -c bench/meter/vitest.meter.config.ts`)');
  out.push('');
  out.push(
    `Each scenario sends ${report.notificationsPerScenario} \`order_shipped\` notifications (single ingest: fewer, one per request) to distinct contacts that have an email, a phone, an FCM token, Slack and a webhook, through the Worker's \`fetch()\` (batch ingest: ${report.perRequest} per \`POST /v1/notifications/batch\`), then runs the captured queue messages through \`queue()\` in batches of ${report.consumerBatch} messages. Providers are the sandbox (no subrequests). Every binding is wrapped in a counting proxy; D1 rows are D1's own \`meta.rows_written\`/\`rows_read\`; Recipient object rows are SQLite's \`cursor.rowsWritten\`, measured inside the objects. Figures are per **delivered** delivery.`,
  );
  out.push('');
  out.push(
    row([
      'scenario',
      'deliveries',
      'queue msgs',
      'Workers invocations',
      'D1 statements',
      'D1 rows written',
      'of which real providers',
      'D1 rows read',
      'queue ops',
      'DO requests',
      'DO rows written',
      'R2 B reads (run)',
      'R2 A lists (run)',
      'subrequests',
      'D1 bytes (ingest / delivery)',
      '$ / M deliveries',
    ]),
  );
  out.push(row(['---', ...Array.from({ length: 15 }, () => '---:')]));
  for (const s of report.scenarios) {
    const p = perDelivery(s);
    out.push(
      row([
        s.name,
        s.sent,
        s.messages,
        fmt(p.workerInvocations),
        fmt(p.d1Statements),
        fmt(p.d1RowsWritten),
        fmt(p.d1RowsWrittenRealProviders),
        fmt(p.d1RowsRead),
        fmt(p.queueOps),
        fmt(p.doRequests),
        fmt(p.doRowsWritten),
        p.r2ClassB,
        p.r2ClassA,
        fmt(p.subrequests),
        `${fmt(s.databaseGrowth.ingest / s.sent, 3)} / ${fmt(s.databaseGrowth.delivery / s.sent, 3)}`,
        usd(p.dollars),
      ]),
    );
  }
  out.push('');
  out.push(
    '"of which real providers" leaves out the statements on the sandbox outbox (its insert writes 3 rows: the row, its AUTOINCREMENT sequence row, its index), which real providers do not run. "D1 bytes" is how much the database grew per delivery while accepting (notification and delivery rows, index) and while delivering (status history, plus the sandbox outbox). The first scenario that reaches a recipient also sets its cleanup alarm (counted as a DO row written); later scenarios find it pending.',
  );

  for (const s of [all, single]) {
    if (!s) continue;
    const p = perDelivery(s);
    out.push('');
    out.push(`### Cloudflare cost per million deliveries: ${s.name}`);
    out.push('');
    out.push(...costTable(p.cost, 'delivery'));
    out.push('');
    out.push(
      `With real providers (no sandbox outbox rows): **${usd(p.dollarsRealProviders)}** per million deliveries.`,
    );
  }

  out.push('');
  out.push('### The seed AWS design per million notifications (one event = one channel = one delivery)');
  out.push('');
  out.push(...costTable(aws, 'notification'));
  out.push('');
  out.push(
    `Assumptions: one API Gateway request and one EventBridge event per event; SQS standard at 3 requests per message; Lambda x86 at $${AWS_ASSUMPTIONS.lambdaGbSecondPrice}/M GB-s, ${AWS_ASSUMPTIONS.ingestLambdaMemoryMb} MB; the worker Lambda's duration includes the wait for SNS/SES; DynamoDB on-demand ($1.25/M WRU, $0.25/M RRU) with ${AWS_ASSUMPTIONS.contactReadsRru} RRU for the contact read and ${AWS_ASSUMPTIONS.statusWritesWru} WRU of status writes. SNS/SES and CloudWatch Logs are left out on both sides.`,
  );

  if (all && single) {
    const pa = perDelivery(all);
    const ps = perDelivery(single);
    const maxKeyReads = Math.max(...report.scenarios.map((s) => perDelivery(s).maxReadsOfOneKey));
    out.push('');
    out.push('### Budgets from the issue (per delivery)');
    out.push('');
    out.push(row(['budget', 'all channels, batch ingest', 'all channels, single ingest', 'verdict']));
    out.push(row(['---', '---:', '---:', '---']));
    out.push(
      row([
        `D1 rows written <= ${BUDGETS.d1RowsWritten} (index rows included)`,
        `${fmt(pa.d1RowsWritten)} (real providers ${fmt(pa.d1RowsWrittenRealProviders)})`,
        `${fmt(ps.d1RowsWritten)} (real providers ${fmt(ps.d1RowsWrittenRealProviders)})`,
        verdict(
          Math.max(pa.d1RowsWrittenRealProviders, ps.d1RowsWrittenRealProviders) <= BUDGETS.d1RowsWritten,
        ),
      ]),
    );
    out.push(
      row([
        `Durable Object requests <= ${BUDGETS.doRequests}`,
        fmt(pa.doRequests),
        fmt(ps.doRequests),
        verdict(Math.max(pa.doRequests, ps.doRequests) <= BUDGETS.doRequests),
      ]),
    );
    out.push(
      row([
        `queue operations <= ${BUDGETS.queueOps}`,
        fmt(pa.queueOps),
        fmt(ps.queueOps),
        pa.queueOps <= BUDGETS.queueOps && ps.queueOps <= BUDGETS.queueOps
          ? 'met'
          : pa.queueOps <= BUDGETS.queueOps
            ? '**met for batches, not for single sends**'
            : '**not met**',
      ]),
    );
    out.push(
      row([
        `R2 reads <= ${BUDGETS.r2ReadsPerTemplatePerMinute} per template per isolate per minute`,
        `most reads of one key in a run: ${maxKeyReads}`,
        '',
        verdict(maxKeyReads <= BUDGETS.r2ReadsPerTemplatePerMinute),
      ]),
    );
    out.push(
      row([
        `<= $${BUDGETS.dollarsPerMillion.toFixed(2)} per million deliveries`,
        `${usd(pa.dollars)} (real providers ${usd(pa.dollarsRealProviders)})`,
        `${usd(ps.dollars)} (real providers ${usd(ps.dollarsRealProviders)})`,
        pa.dollarsRealProviders <= BUDGETS.dollarsPerMillion &&
        ps.dollarsRealProviders <= BUDGETS.dollarsPerMillion
          ? 'met'
          : pa.dollarsRealProviders <= BUDGETS.dollarsPerMillion
            ? '**met for batches, not for single sends**'
            : '**not met**',
      ]),
    );
    out.push(
      row([
        `< half the AWS figure (${usd(awsTotal)} / 2 = ${usd(awsTotal * BUDGETS.shareOfAws)})`,
        `${fmt((pa.dollarsRealProviders / awsTotal) * 100, 2)} % of AWS`,
        `${fmt((ps.dollarsRealProviders / awsTotal) * 100, 2)} % of AWS`,
        pa.dollarsRealProviders < awsTotal * BUDGETS.shareOfAws &&
        ps.dollarsRealProviders < awsTotal * BUDGETS.shareOfAws
          ? 'met'
          : pa.dollarsRealProviders < awsTotal * BUDGETS.shareOfAws
            ? '**met for batches, not for single sends**'
            : '**not met**',
      ]),
    );

    if (maxKeyReads > 1) {
      out.push('');
      out.push(
        `R2: a cold isolate read one template up to ${maxKeyReads} times within a second: the deliveries of a batch render concurrently and each misses the per-isolate cache before the first read fills it (concurrent misses are not coalesced). After that, one read per template per isolate per minute.`,
      );
    }

    for (const s of [all, single]) {
      out.push('');
      out.push(`### Where the D1 rows go: ${s.name}`);
      out.push('');
      out.push(...statementTable(s.total.d1ByStatement, s.sent));
    }
  }

  const c = report.cron;
  const ticksPerMonth = 60 * 24 * 30;
  const cronMonthly =
    (ticksPerMonth *
      (CLOUDFLARE_PRICES.workersRequest +
        c.d1RowsWritten * CLOUDFLARE_PRICES.d1RowWritten +
        c.d1RowsRead * CLOUDFLARE_PRICES.d1RowRead)) /
    1e6;
  out.push('');
  out.push('### The once-a-minute cron (sweeper, backlog check, alert digest)');
  out.push('');
  const inDatabase = report.scenarios.reduce((sum, s) => sum + s.deliveries, 0);
  out.push(
    `One tick: ${c.d1Statements} D1 statements, ${c.d1RowsWritten} rows written, ${c.d1RowsRead} rows read (with ${inDatabase} deliveries in the database, all created minutes earlier), ${c.doRequests} DO requests, ${c.r2ClassB + c.r2ClassA} R2 operations, ${c.subrequests} subrequests. Its reads grow with the deliveries inside the scan window, so in steady state each delivery is read once per tick while it is inside that window (see docs/scaling.md). ${ticksPerMonth} ticks a month at this size: about ${usd(cronMonthly)} a month.`,
  );
  out.push('');
  out.push(...statementTable(c.d1ByStatement, 1, 'tick'));
  out.push('');
  out.push('### Not counted');
  out.push('');
  out.push(
    '- Workers CPU time ($0.02 per million CPU-ms beyond the included 30 M/month): not measurable inside workerd; every 1 ms of CPU per delivery adds $0.02 per million deliveries.',
  );
  out.push(
    "- Recipient schema creation: the object's constructor writes 2 rows once in an object's life (per the comment in `src/durable/recipient.ts`; the objects here were woken before metering, as in steady state).",
  );
  out.push(
    '- Plan fees and free allowances (Workers Paid $5/month includes 10 M requests, 1 M queue operations, 50 M D1 rows written ...).',
  );
  return out.join('\n');
}
