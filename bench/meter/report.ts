import type { Channel } from '../../src/domain/channels';
import { FCM_ACCESS_TOKEN_MAX_AGE_MS } from '../../src/providers/push/fcm';
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
  /** Batch ingest (many notifications a request) or one notification per request. */
  batch: boolean;
  /** Every notification carried its own `id` (the producer's idempotency key). */
  producerIds: boolean;
  /** The channels the notifications named; null when they named none (every templated channel). */
  channels: Channel[] | null;
  notifications: number;
  deliveries: number;
  sent: number;
  statuses: Record<string, number>;
  /** Deliveries by the provider that sent them. */
  providers: Record<string, number>;
  /** Queue messages the ingest wrote. */
  messages: number;
  unconsumed: number;
  deadLettered: number;
  /** Wall time from the first ingest request to the last consumer batch (ms). */
  wallMs: number;
  ingest: Counts;
  consume: Counts;
  total: Counts;
  storage: DurableObjectStorageCounts;
  /** D1 database growth in bytes while accepting, and while delivering. */
  databaseGrowth: { ingest: number; delivery: number };
  /** A send to a topic: its expansion (counted in `ingest`) and what subscribing cost beforehand. */
  topic?: TopicFigures;
}

/** One notification to a topic: its subscribers, the expansion's pages, and the subscribe calls before it. */
export interface TopicFigures {
  subscribers: number;
  /** Page messages the topics queue's consumer handled (each one database's next page). */
  pages: number;
  /** Page messages written (ingest's first page per database, then each page's next). */
  pageMessages: number;
  /** queue() invocations of the topics queue (batches of pages). */
  invocations: number;
  /** `PUT /v1/topics/{key}` and the `POST .../subscribers` calls: setup, not in the per-delivery figures. */
  subscribe: Counts;
}

export interface MeterReport {
  notificationsPerScenario: number;
  perRequest: number;
  consumerBatch: number;
  /** The topics queue's consumer batch (pages per queue() call). */
  topicBatch: number;
  /** Contacts created up front: each scenario sends to its own. */
  contacts: number;
  /** The provider configured for each channel. */
  providers: Record<Channel, string>;
  scenarios: ScenarioResult[];
  cron: Counts;
  /** Time from the first scenario's first request to the cron tick (ms). */
  cronAfterMs: number;
  /** Retention over everything the scenarios wrote: its counts, deliveries removed, archive objects. */
  retention: { counts: Counts; removed: number; objects: number };
}

/** Budgets from the issue, per delivered delivery. */
export const BUDGETS = {
  d1RowsWritten: 2,
  doRequests: 1,
  /** Recipient object rows written per `decide` call (issue 13: its one state row, at most once). */
  doRowsPerDecide: 1,
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
const code = (label: string) => `\`${label.replace(/\|/g, '\\|')}\``;
const plural = (n: number, one: string, many = `${one}s`) => `${fmt(n)} ${n === 1 ? one : many}`;
/** A count as a whole number (1,000), or as `fmt` when it has a fraction. */
const whole = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : fmt(n));
const wholePlural = (n: number, one: string, many = `${one}s`) => `${whole(n)} ${n === 1 ? one : many}`;

/** The Recipient `decide` calls of a scenario. */
const decideCalls = (s: ScenarioResult) => s.total.doByMethod.decide ?? 0;

/** Figures per delivered delivery for one scenario. */
export function perDelivery(s: ScenarioResult) {
  const d = s.sent;
  const cost = cloudflareCost(s.total, s.storage, d, s.unconsumed);
  const dollars = sumDollars(cost);
  return {
    workerInvocations: (s.total.fetchRequests + s.total.queueInvocations) / d,
    d1Statements: s.total.d1Statements / d,
    /** Round trips to D1 (a `batch` is one): what bounds one database's throughput, not what it bills. */
    d1Calls: s.total.d1Calls / d,
    d1RowsWritten: s.total.d1RowsWritten / d,
    d1RowsRead: s.total.d1RowsRead / d,
    queueOps: queueOperations(s.total, s.unconsumed) / d,
    doRequests: s.total.doRequests / d,
    doRowsWritten: (s.storage.rowsWritten + s.storage.setAlarmCalls) / d,
    /** Recipient rows written per `decide` call (a consumer batch asks each recipient once). */
    doRowsPerDecide: (s.storage.rowsWritten + s.storage.setAlarmCalls) / Math.max(1, decideCalls(s)),
    r2ClassB: s.total.r2ClassB,
    r2ClassA: s.total.r2ClassA,
    /** Most R2 reads of one key, or lists of one prefix, in the scenario's run (one cold isolate). */
    maxR2OfOneTemplate: Math.max(
      0,
      ...Object.values(s.total.r2KeysRead),
      ...Object.values(s.total.r2PrefixesListed),
    ),
    /** Minutes the scenario ran, rounded up: the budget allows one read per template per minute. */
    minutes: Math.max(1, Math.ceil(s.wallMs / 60_000)),
    subrequests: s.total.subrequests / d,
    cost,
    dollars,
    shareOfAws: dollars / sumDollars(awsCost()),
  };
}

function costTable(lines: readonly CostLine[], unit: 'delivery' | 'notification'): string[] {
  const units = unit === 'delivery' ? 'deliveries' : 'notifications';
  return [
    row(['item', `per ${unit}`, '$ per M units', `$ per M ${units}`, 'note']),
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
        code(label),
        fmt(u.statements / divisor),
        fmt(u.rowsWritten / divisor),
        fmt(u.rowsRead / divisor),
      ]),
    ),
  ];
}

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const judged = (value: string, ok: boolean, note = '') =>
  `${value} (${verdict(ok)}${note ? `; ${note}` : ''})`;

/** The statement reading the most rows per delivery in a scenario. */
function heaviestRead(s: ScenarioResult): { label: string; perDelivery: number } | undefined {
  const [top] = Object.entries(s.total.d1ByStatement).sort((a, b) => b[1].rowsRead - a[1].rowsRead);
  return top ? { label: top[0], perDelivery: top[1].rowsRead / s.sent } : undefined;
}

/** The budget table: one row per scenario, each figure judged against the issue's budget. */
function budgetTable(report: MeterReport, awsTotal: number): string[] {
  const out = [
    row([
      'scenario',
      `D1 rows written <= ${BUDGETS.d1RowsWritten} (index rows included)`,
      `DO requests <= ${BUDGETS.doRequests}`,
      `DO rows written <= ${BUDGETS.doRowsPerDecide} per decide call`,
      `queue operations <= ${BUDGETS.queueOps}`,
      `R2: reads of one template <= ${BUDGETS.r2ReadsPerTemplatePerMinute} per isolate per minute`,
      `<= $${BUDGETS.dollarsPerMillion.toFixed(2)} per M deliveries`,
      `< ${BUDGETS.shareOfAws * 100} % of AWS (${usd(awsTotal)})`,
    ]),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
  ];
  for (const s of report.scenarios) {
    const p = perDelivery(s);
    out.push(
      row([
        s.name,
        judged(fmt(p.d1RowsWritten), p.d1RowsWritten <= BUDGETS.d1RowsWritten),
        judged(fmt(p.doRequests), p.doRequests <= BUDGETS.doRequests),
        judged(
          `${fmt(p.doRowsPerDecide)} per call (${fmt(p.doRowsWritten)} per delivery)`,
          p.doRowsPerDecide <= BUDGETS.doRowsPerDecide,
        ),
        judged(
          fmt(p.queueOps),
          p.queueOps <= BUDGETS.queueOps,
          s.batch || s.topic ? '' : 'single sends, not the budgeted case',
        ),
        judged(
          `${p.maxR2OfOneTemplate} in ${Math.ceil(s.wallMs / 1000)} s`,
          p.maxR2OfOneTemplate <= BUDGETS.r2ReadsPerTemplatePerMinute * p.minutes,
        ),
        judged(usd(p.dollars), p.dollars <= BUDGETS.dollarsPerMillion),
        judged(`${fmt(p.shareOfAws * 100, 2)} %`, p.shareOfAws < BUDGETS.shareOfAws),
      ]),
    );
  }
  return out;
}

/** What producer ids add: the statements only that scenario ran, against the same scenario without ids. */
/** What a digest scenario's figures mean: per email that went out, each carrying several notifications. */
function digestsNote(report: MeterReport): string | undefined {
  const s = report.scenarios.find((x) => (x.statuses.digested ?? 0) > 0);
  if (!s) return undefined;
  const folded = s.deliveries / s.sent;
  const p = perDelivery(s);
  return `**Digests.** \`${s.name}\` counts per email that went out, each carrying ${fmt(folded)} notifications (the ${fmt(folded - 1)} held ones end \`digested\`): per notification that is ${fmt(p.d1RowsWritten / folded)} D1 rows written, ${fmt(p.doRequests / folded)} DO requests and ${fmt(p.doRowsWritten / folded)} DO rows (the open digest's row, rewritten by each fold), ${usd(p.dollars / folded)} per million notifications, for one email where there would have been ${fmt(folded)}.`;
}

/** D1 usage of the statements whose label passes `test`, summed. */
function usageOf(byStatement: Counts['d1ByStatement'], test: (label: string) => boolean) {
  const sum = { statements: 0, rowsWritten: 0, rowsRead: 0 };
  for (const [label, u] of Object.entries(byStatement)) {
    if (!test(label)) continue;
    sum.statements += u.statements;
    sum.rowsWritten += u.rowsWritten;
    sum.rowsRead += u.rowsRead;
  }
  return sum;
}

/**
 * What a send to a topic costs beyond a plain batch on the same channel: the expansion's pages
 * (their messages and per-page reads) and the data on every row; and what subscribing cost.
 */
function topicNote(report: MeterReport): string | undefined {
  const s = report.scenarios.find((x) => x.topic);
  const t = s?.topic;
  if (!s || !t) return undefined;
  const plain = report.scenarios.find(
    (x) =>
      x.batch &&
      !x.producerIds &&
      !x.topic &&
      x.sent === x.deliveries &&
      JSON.stringify(x.channels) === JSON.stringify(s.channels),
  );
  const d = s.sent;
  const p = perDelivery(s);
  const ingest = s.ingest.d1ByStatement;
  const sendReads = usageOf(ingest, (l) => l.includes('FROM topic_sends'));
  const subscriptions = usageOf(ingest, (l) => l.includes('FROM topic_subscriptions'));
  const existence = usageOf(ingest, (l) => l.startsWith('SELECT id FROM deliveries WHERE id IN'));
  const contacts = usageOf(ingest, (l) => l.startsWith('SELECT * FROM contacts'));
  const rowInserts = usageOf(ingest, (l) => l.startsWith('INSERT OR IGNORE INTO deliveries'));
  const sendRecord = usageOf(ingest, (l) => l.startsWith('INSERT INTO topic_sends'));
  const pageOps = t.pageMessages + 2 * t.pages;
  const channelMessages = s.messages - t.pageMessages;
  const perPage = (n: number) => fmt(n / Math.max(1, t.pages));
  const extraReads = sendReads.rowsRead + subscriptions.rowsRead + existence.rowsRead;
  const subscribeRows = t.subscribe.d1RowsWritten / t.subscribers;
  const q = plain ? perDelivery(plain) : undefined;
  const parts = [
    `**Topic fan-out.** \`${s.name}\`: the request writes only the send's record (\`topic_sends\` in the home database, ${wholePlural(sendRecord.rowsWritten, 'row')}, its data sealed) and hands one page per database to the topics queue; ${t.pages} pages expand it (each database's subscribers 250 at a time, and one more page than it has full ones).`,
    ` Per page: the send's record read again (${perPage(sendReads.rowsRead)} rows read), up to 250 subscriptions in one key range (${perPage(subscriptions.rowsRead)} rows read), the page's contacts (${perPage(contacts.statements)} statements, ${perPage(contacts.rowsRead)} rows read), the existence read of the page's delivery ids (${perPage(existence.statements)} statements of up to 100 ids, ${perPage(existence.rowsRead)} rows read: D1 counts about one per id though a first run finds none; a page run again writes only what is missing), ${perPage(channelMessages)} channel messages, one commit of its rows (\`INSERT OR IGNORE\`, one statement per row: ${perPage(rowInserts.statements)} statements, ${perPage(rowInserts.rowsWritten)} rows written) and the next page's message.`,
    ` The pages cost ${fmt(pageOps / d)} queue operations per delivery (${t.pageMessages} messages, each written, read and deleted) and ${fmt(t.invocations / d)} Workers invocations (${t.invocations} \`queue()\` calls of up to ${report.topicBatch} pages); the reads a plain batch does not make (the send's record, the subscriptions, the existence read) are ${fmt(extraReads / d)} D1 rows per delivery, ${usd((extraReads / d) * CLOUDFLARE_PRICES.d1RowRead)} per million deliveries.`,
    ` Each subscriber's row is its own head and carries the notification's data, sealed for it (${fmt(s.databaseGrowth.ingest / d)} bytes of D1 per delivery at acceptance${plain ? ` against ${fmt(plain.databaseGrowth.ingest / plain.sent)} for \`${plain.name}\`, whose notifications, to one user each, are their own heads too` : ''}), so each row reads, moves and is archived alone.`,
    plain && q
      ? ` Altogether ${fmt(p.d1RowsWritten)} D1 rows written per delivery against ${fmt(q.d1RowsWritten)}, ${fmt(p.d1RowsRead)} rows read against ${fmt(q.d1RowsRead)}, ${fmt(p.queueOps)} queue operations against ${fmt(q.queueOps)}: ${usd(p.dollars)} against ${usd(q.dollars)} per million deliveries, from one request where the batch took ${plain.total.fetchRequests}.`
      : '',
    ` Subscribing (before the send, once per subscription, ${wholePlural(t.subscribe.fetchRequests - 1, 'call')}) wrote ${plural(subscribeRows, 'D1 row')} per subscriber: ${usd(subscribeRows * CLOUDFLARE_PRICES.d1RowWritten)} per million subscriptions.`,
  ];
  return parts.join('');
}

function producerIdsNote(report: MeterReport): string | undefined {
  const withIds = report.scenarios.find((s) => s.producerIds);
  if (!withIds) return undefined;
  // The same scenario without producer ids: same channels, same ingest.
  const without = report.scenarios.find(
    (s) =>
      !s.producerIds &&
      s.batch === withIds.batch &&
      s.notifications === withIds.notifications &&
      JSON.stringify(s.channels) === JSON.stringify(withIds.channels),
  );
  if (!without) return undefined;
  const a = perDelivery(withIds);
  const b = perDelivery(without);
  const perNotification = (s: ScenarioResult) => s.total.d1RowsWritten / s.notifications;
  const extra = perNotification(withIds) - perNotification(without);
  const added = Object.entries(withIds.total.d1ByStatement)
    .filter(([label, u]) => u.rowsWritten > 0 && !without.total.d1ByStatement[label])
    .map(
      ([label, u]) =>
        `${code(label)} (${plural(u.rowsWritten / withIds.notifications, 'row')} written per notification)`,
    );
  const deliveriesPerNotification = withIds.deliveries / withIds.notifications;
  return [
    `**Producer ids.** \`${withIds.name}\` writes ${fmt(a.d1RowsWritten)} D1 rows per delivery against ${fmt(b.d1RowsWritten)} for \`${without.name}\`: ${plural(extra, 'more row')} per notification`,
    added.length > 0 ? `, from ${added.join(' and ')}` : '',
    added.length === 1 && /notification_keys/.test(added[0] ?? '')
      ? ", the key row that records the producer's own id."
      : '.',
    ` It is written per notification, not per delivery, so it weighs ${fmt(extra / deliveriesPerNotification)} row per delivery here (${fmt(deliveriesPerNotification)} delivery per notification) and less on a notification to several channels;`,
    ` with it the D1 budget of ${BUDGETS.d1RowsWritten} rows per delivery is ${verdict(a.d1RowsWritten <= BUDGETS.d1RowsWritten)}, and the cost is ${usd(a.dollars)} against ${usd(b.dollars)} per million deliveries.`,
  ].join('');
}

/** The meter's section of bench/results.md. */
export function renderReport(report: MeterReport): string {
  const out: string[] = [];
  const all = report.scenarios.find((s) => s.batch && !s.producerIds && s.channels === null);
  const single = report.scenarios.find((s) => !s.batch && !s.topic);
  const withIds = report.scenarios.find((s) => s.producerIds);
  const topic = report.scenarios.find((s) => s.topic);
  const aws = awsCost();
  const awsTotal = sumDollars(aws);
  const providerList = (Object.entries(report.providers) as [Channel, string][])
    .map(([channel, name]) => `${channel} \`${name}\``)
    .join(', ');
  const unsent = report.scenarios.filter((s) => s.sent !== s.deliveries);
  const withIdsIntro = withIds
    ? ` In \`${withIds.name}\` each notification carries its own \`id\` (the producer's idempotency key); elsewhere Herald generates the ids.`
    : '';
  const topicIntro = topic?.topic
    ? ` \`${topic.name}\` sends ONE notification (\`recipients: [{ "topic": key }]\`, one \`POST /v1/notifications\`) to a topic its ${topic.topic.subscribers} users were subscribed to beforehand (${wholePlural(topic.topic.subscribe.fetchRequests - 1, 'call')} of up to 1,000, not counted in its figures), then runs the captured \`herald-topics\` queue through \`queue()\` in batches of ${report.topicBatch} pages until the expansion is done (${topic.topic.pages} pages: each plans, enqueues and writes up to 250 subscribers of one database and enqueues that database's next page), then the channel queue as above; its "queue msgs" are the ${topic.topic.pageMessages} page messages and the channel messages the pages wrote.`
    : '';

  out.push('## Operation meter (inside workerd, `npx vitest run -c bench/meter/vitest.meter.config.ts`)');
  out.push('');
  out.push(
    `Each scenario sends ${report.notificationsPerScenario} \`order_shipped\` notifications (single ingest: fewer, one per request) to its own contacts, which no earlier scenario reached (${report.contacts} contacts in all, each with an email, a phone, an FCM token, Slack and a webhook, so every scenario measures recipients with no earlier sends in their windows), through the Worker's \`fetch()\` (batch ingest: ${report.perRequest} per \`POST /v1/notifications/batch\`), then runs the captured queue messages through \`queue()\` in batches of ${report.consumerBatch} messages.${withIdsIntro}${topicIntro} Providers are the real provider modules (${providerList}), configured through env overrides; the global \`fetch\` they call is replaced by a fake network that answers each provider host with its documented success response (no request leaves the machine) and counts every request by host. ${unsent.length === 0 ? 'Every delivery ended `sent`.' : `Not every delivery ended \`sent\`: ${unsent.map((s) => `${s.name} ${JSON.stringify(s.statuses)}`).join('; ')}.`} Every binding is wrapped in a counting proxy; D1 rows are D1's own \`meta.rows_written\`/\`rows_read\`; Recipient object rows are SQLite's \`cursor.rowsWritten\`, measured inside the objects. Figures are per **delivered** delivery.`,
  );
  out.push('');
  out.push(
    row([
      'scenario',
      'deliveries',
      'queue msgs',
      'Workers invocations',
      'D1 statements',
      'D1 calls',
      'D1 rows written',
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
        fmt(p.d1Calls),
        fmt(p.d1RowsWritten),
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
  const alarms = report.scenarios.reduce((sum, s) => sum + s.storage.setAlarmCalls, 0);
  const doRows = report.scenarios.reduce((sum, s) => sum + s.storage.rowsWritten, 0);
  const notes = [
    '"D1 calls" are round trips to the database (a `batch` of many statements is one): not billed, but one database serves them one at a time. Each provider answer is recorded in its own call as soon as it arrives, so nothing failing later in a batch can make it go out again: about one call per delivery where a whole consumer batch used to share one. "D1 bytes" is how much the database grew per delivery while accepting (what ingest inserts) and while delivering (what the outcome adds to each delivery row).',
    `"DO rows written" is the rows the Recipient objects' (and, for in-app items, the Inbox objects') SQL statements wrote plus one per \`setAlarm\`: ${plural(doRows, 'row')} and ${plural(alarms, 'alarm')} over all scenarios. An in-app delivery makes two DO requests (the Recipient's decision, the Inbox's append) and writes the Inbox's rows: the item, the counts row and the frame a reconnecting socket replays.`,
    'The sandbox provider (local development, the default when no provider is configured) additionally writes every message it captures to its outbox table in D1; these figures, from real providers, have no outbox rows.',
  ];
  out.push(notes.join(' '));
  if (all) {
    const hosts = Object.entries(all.total.subrequestHosts)
      .sort((a, b) => b[1] - a[1])
      .map(([host, n]) => `${host} ${n}`)
      .join(', ');
    const tokens = all.total.subrequestHosts['oauth2.googleapis.com'] ?? 0;
    const tokenNote =
      tokens === 0
        ? ''
        : tokens === 1
          ? ` The request to oauth2.googleapis.com is the FCM access token, fetched once by the scenario's fresh isolate and reused for up to ${FCM_ACCESS_TOKEN_MAX_AGE_MS / 60_000} minutes.`
          : ` The ${tokens} requests to oauth2.googleapis.com are FCM access tokens: the scenario's fresh isolate fetched ${tokens} before the first answer was cached (its first push sends run concurrently and each asks for one), then reused it for up to ${FCM_ACCESS_TOKEN_MAX_AGE_MS / 60_000} minutes.`;
    out.push('');
    out.push(`Subrequests in \`${all.name}\` (${all.sent} deliveries): ${hosts}.${tokenNote}`);
    const heaviest = heaviestRead(all);
    if (heaviest) {
      out.push('');
      out.push(
        `The statement that reads the most D1 rows in \`${all.name}\` is ${code(heaviest.label)}: ${fmt(heaviest.perDelivery)} rows per delivery (see "Where the D1 rows go").`,
      );
    }
  }

  for (const s of [all, single, withIds, topic]) {
    if (!s) continue;
    const p = perDelivery(s);
    out.push('');
    out.push(`### Cloudflare cost per million deliveries: ${s.name}`);
    out.push('');
    out.push(...costTable(p.cost, 'delivery'));
  }

  out.push('');
  out.push('### The seed AWS design per million notifications (one event = one channel = one delivery)');
  out.push('');
  out.push(...costTable(aws, 'notification'));
  out.push('');
  out.push(
    `Assumptions: one API Gateway request and one EventBridge event per event; SQS standard at 3 requests per message; Lambda x86 at $${AWS_ASSUMPTIONS.lambdaGbSecondPrice}/M GB-s, ${AWS_ASSUMPTIONS.ingestLambdaMemoryMb} MB; the worker Lambda's duration includes the wait for SNS/SES; DynamoDB on-demand ($1.25/M WRU, $0.25/M RRU) with ${AWS_ASSUMPTIONS.contactReadsRru} RRU for the contact read and ${AWS_ASSUMPTIONS.statusWritesWru} WRU of status writes. SNS/SES and CloudWatch Logs are left out on both sides.`,
  );

  out.push('');
  out.push('### Budgets from the issue (per delivery)');
  out.push('');
  out.push(...budgetTable(report, awsTotal));
  out.push('');
  const budgetNotes: string[] = [];
  const idsNote = producerIdsNote(report);
  if (idsNote) budgetNotes.push(idsNote);
  const digestNote = digestsNote(report);
  if (digestNote) budgetNotes.push(digestNote);
  const fanOutNote = topicNote(report);
  if (fanOutNote) budgetNotes.push(fanOutNote);
  budgetNotes.push(
    `**DO rows written**: at most ${BUDGETS.doRowsPerDecide} per \`decide\` call, the Recipient object's one state row (its counted sends, dedupe claims and leases as compact JSON), rewritten when the call let through a delivery that a cap counts or that carries a \`dedupeKey\`, so that caps, claims and leases survive eviction and deploys. A webhook without a type cap or key writes none. A consumer batch asks each recipient once per channel queue, so a notification to several capped channels writes one row per channel; a notification's several deliveries on one channel (devices, chat channels) share the row and the slot.`,
  );
  if (single) {
    budgetNotes.push(
      `**Queue operations**: \`${single.name}\` writes ${fmt(single.messages / single.deliveries)} queue message per delivery (${single.messages} messages for ${single.deliveries} deliveries: each request carries one notification, whose deliveries go to their channels' queues one message each), so every delivery pays the write, read and delete of a message of its own. That is not the budgeted case, which is batch ingest.`,
    );
  }
  budgetNotes.push(
    `**R2**: the most reads (get/head) of one template key or lists of one type's prefix during a scenario, which runs in a fresh env (a cold isolate), against ${BUDGETS.r2ReadsPerTemplatePerMinute} per started minute of its run time.`,
  );
  // A delivery on a capped channel is asked about in a decide call of its own when its recipient
  // has one delivery in the batch, as in every scenario here: its row is the delivery's.
  const floor =
    BUDGETS.d1RowsWritten * CLOUDFLARE_PRICES.d1RowWritten +
    BUDGETS.doRequests * CLOUDFLARE_PRICES.doRequest +
    BUDGETS.doRowsPerDecide * CLOUDFLARE_PRICES.doRowWritten;
  budgetNotes.push(
    `**$ and AWS**: the Cloudflare total per million deliveries of each scenario (as in the cost tables) against $${BUDGETS.dollarsPerMillion.toFixed(2)}, and against the seed AWS design's ${usd(awsTotal)} per million notifications (one delivery each). At the operation budgets' own limits, ${BUDGETS.d1RowsWritten} D1 rows written, ${BUDGETS.doRequests} Durable Object request and ${BUDGETS.doRowsPerDecide} Recipient row (a capped delivery alone in its recipient's decide call) cost ${usd(floor)} per million deliveries before anything else, so ${floor > BUDGETS.dollarsPerMillion ? `a delivery that meets them cannot also meet $${BUDGETS.dollarsPerMillion.toFixed(2)}` : `they leave ${usd(BUDGETS.dollarsPerMillion - floor)} for the rest`}.`,
  );
  for (const note of budgetNotes) {
    out.push(`- ${note}`);
  }

  for (const s of [all, single, withIds, topic]) {
    if (!s) continue;
    out.push('');
    out.push(`### Where the D1 rows go: ${s.name}`);
    out.push('');
    out.push(...statementTable(s.total.d1ByStatement, s.sent));
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
    `One tick: ${c.d1Statements} D1 statements, ${c.d1RowsWritten} rows written, ${c.d1RowsRead} rows read (with ${inDatabase} deliveries in the database, all created in the ${Math.ceil(report.cronAfterMs / 1000)} s before the tick), ${c.doRequests} DO requests, ${c.r2ClassB + c.r2ClassA} R2 operations, ${c.subrequests} subrequests. Its reads grow with the deliveries inside the scan window, so in steady state each delivery is read once per tick while it is inside that window (see docs/scaling.md). ${ticksPerMonth} ticks a month at this size: about ${usd(cronMonthly)} a month.`,
  );
  out.push('');
  out.push(...statementTable(c.d1ByStatement, 1, 'tick'));
  out.push('');
  out.push(...retentionSection(report));
  out.push('');
  out.push('### Not counted');
  out.push('');
  out.push(
    '- Workers CPU time ($0.02 per million CPU-ms beyond the included 30 M/month): not measurable inside workerd; every 1 ms of CPU per delivery adds $0.02 per million deliveries.',
  );
  out.push(
    "- Subrequests and the providers' own charges: Workers bill no subrequest, and what Resend, Twilio and the other providers charge is the same whatever runs Herald (SNS/SES are left out of the AWS figure likewise). The time a consumer waits on a provider is not CPU time.",
  );
  out.push(
    "- Recipient schema creation: the object's constructor writes 2 rows once in an object's life (per the comment in `src/durable/recipient.ts`; the objects here were woken before metering, as in steady state).",
  );
  out.push(
    '- Plan fees and free allowances (Workers Paid $5/month includes 10 M requests, 1 M queue operations, 50 M D1 rows written ...).',
  );
  return out.join('\n');
}

/** What removing a delivery costs once it is older than the retention: archive first, then delete. */
function retentionSection(report: MeterReport): string[] {
  const { counts: r, removed, objects } = report.retention;
  const per = Math.max(1, removed);
  const dollars =
    (r.d1RowsWritten * CLOUDFLARE_PRICES.d1RowWritten +
      r.d1RowsRead * CLOUDFLARE_PRICES.d1RowRead +
      r.r2ClassA * CLOUDFLARE_PRICES.r2ClassA) /
    per;
  const keyRows = Object.entries(r.d1ByStatement)
    .filter(([sql]) => sql.startsWith('INSERT INTO user_keys'))
    .reduce((sum, [, usage]) => sum + usage.rowsWritten, 0);
  const deleteDollars = dollars - (keyRows * CLOUDFLARE_PRICES.d1RowWritten) / per;
  return [
    '### Retention (archive to R2, then remove from D1)',
    '',
    `Every delivery the scenarios wrote (${removed}), run through \`POST /v1/admin/retention/run\` as if older than the retention: ${objects} archive objects (gzip NDJSON, one per database and hour of creation, in parts of at most 1,000 rows), then the rows removed. Per removed delivery: ${fmt(r.d1RowsWritten / per)} D1 rows written (index rows included), ${fmt(r.d1RowsRead / per)} rows read, ${fmt(r.r2ClassA / per, 3)} R2 Class A operations (the archive writes), ${fmt(r.d1Statements / per)} D1 statements: **${usd(dollars)} per million deliveries** on top of the figures above, and D1 storage stays flat at the retention window (R2 storage, $0.015 per GB-month, holds the archive).`,
    '',
    `Of the rows written, ${fmt(keyRows / per)} per removed delivery are user keys (${plural(keyRows, 'key')} for ${removed} deliveries: the scenarios send to many users once each). A user's key is written once, the first time their rows are archived, and serves every later run until erasure destroys it, so with users who receive many notifications this share tends to 0 and retention costs its delete: ${fmt((r.d1RowsWritten - keyRows) / per)} rows, ${usd(deleteDollars)} per million.`,
  ];
}
