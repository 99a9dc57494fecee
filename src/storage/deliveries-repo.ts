import type { Address } from '../domain/address';
import type { Channel, Priority } from '../domain/channels';
import {
  type Delivery,
  type DeliveryToSend,
  MAX_DELIVERIES_LISTED,
  type Notification,
} from '../domain/delivery';
import { ACCEPTED, type CountIncrement, type ProviderError } from '../domain/metric-counters';
import { type DeliveryStatus, type HistoryEntry, REPORTED_AFTER_SENDING } from '../domain/status';
import { chunk as chunksOf } from '../lib/collections';
import { type FieldCipher, isEncrypted } from '../lib/field-crypto';
import { idAfter, idBoundAt, idTimeMs } from '../lib/ids';
import { log } from '../lib/log';
import { redact } from '../lib/redact';
import { unlockedSql } from './bucket-rows';
import {
  countsOf,
  deliveryCountSql,
  knownCountsSql,
  MetricCountersRepo,
  providerErrorCountSql,
} from './metric-counters-repo';
import { rowsByKey } from './rows-by-key';

const MAX_PARAMS = 100;

/** Statuses of a delivery still waiting to be sent (SQL list). */
const WAITING = "'created', 'queued', 'deferred', 'scheduled'";
const CANCELED_REASON = 'canceled by the producer';
/** Called off while it may have been in a consumer's hands: canceled, or a skipped escalation step. */
const CALLED_OFF = "('canceled', 'skipped')";
/** Answers after which a message may have left: they override a cancel that came too late. */
const MAY_HAVE_GONE: ReadonlySet<DeliveryStatus> = new Set(['sent', 'delivered', 'unknown']);
const mayHaveGone = (o: { attempted: boolean; status: DeliveryStatus }): 0 | 1 =>
  o.attempted && MAY_HAVE_GONE.has(o.status) ? 1 : 0;
/**
 * Statuses a callback can set before the consumer's own record lands (SQL list): the outcome then
 * adds what it knows (provider, message id, send time, history) and leaves the further status.
 */
const REPORTED = REPORTED_AFTER_SENDING.map((s) => `'${s}'`).join(', ');

/**
 * Whether an outcome moves a row's status (`status` its column, `may` whether the answer may have
 * gone out): a row still waiting, or one called off while a consumer was handing it over.
 */
const outcomeMoves = (status: string, may: string) =>
  `(${status} IN (${WAITING}) OR (${status} IN ${CALLED_OFF} AND ${may} = 1))`;

/** Whether an outcome writes the row at all: also a callback's further status, which it completes. */
const outcomeWrites = (status: string, sentAt: string, may: string) =>
  `(${outcomeMoves(status, may)} OR (${status} IN (${REPORTED}) AND ${sentAt} IS NULL))`;

/** Rows per statement counting new rows (a JSON parameter, well inside D1's limits). */
const NEW_ROWS_PER_COUNT = 500;

interface DeliveryRow {
  id: string;
  notification_id: string;
  user_id: string | null;
  channel: Channel;
  address: string | null;
  status: DeliveryStatus;
  reason: string | null;
  provider: string | null;
  provider_message_id: string | null;
  attempts: number;
  template_version: string | null;
  history: string;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
  type: string;
  priority: Priority;
  send_at: number | null;
  dedupe_key: string | null;
  cancel_key?: string | null;
  escalation?: string | null;
  /** The next four are set on the notification's head row only (its first delivery). */
  source: string | null;
  data: string | null;
  channels: string | null;
  request_hash: string | null;
  /** The notification's head row (its own id on the head). */
  head_id: string | null;
  /** On the first head of a notification with parts in several buckets: its ids as planned (JSON). */
  plan?: string | null;
}

/** A notification's head row: the delivery row that also carries the notification. */
type HeadRow = DeliveryRow & { data: string; request_hash: string };

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The address is personal data: encrypted, bound to the delivery id. */
const addressAad = (deliveryId: string) => `deliveries.address:${deliveryId}`;

/** The notification's template data (on its head row) too: encrypted, bound to the head's id. */
const dataAad = (headId: string) => `deliveries.data:${headId}`;

/** Data with nothing in it is stored as it is: there is nothing to hide. */
const EMPTY_DATA = '{}';

/**
 * What erasure leaves in a user's addresses and in the data of notifications only they received:
 * `erased:<epoch ms>`, plus `:contact` when a contact row went with it. Neither column can hold
 * this otherwise (an address is `enc:…`, data `enc:…` or JSON), so reads tell it apart.
 */
const ERASED = 'erased:';
const isErased = (value: string | null): boolean => value?.startsWith(ERASED) === true;
const erasedMarker = (nowMs: number, contact: boolean) =>
  `${ERASED}${Math.trunc(nowMs)}${contact ? ':contact' : ''}`;

/** What an erasure of a user left behind, read back from its markers. */
export interface ErasureRecord {
  /** When the (last) erasure ran. */
  at: string;
  /** Whether a contact row was erased with it. */
  contact: boolean;
  /** Deliveries whose address was erased. */
  deliveries: number;
  /** Notifications (sent to this user alone) whose template data was erased. */
  notifications: number;
}

function toDelivery(row: DeliveryRow, address: Address | null): Delivery {
  return {
    id: row.id,
    notificationId: row.notification_id,
    userId: row.user_id,
    channel: row.channel,
    address,
    status: row.status,
    reason: row.reason,
    provider: row.provider,
    providerMessageId: row.provider_message_id,
    attempts: row.attempts,
    templateVersion: row.template_version,
    history: JSON.parse(row.history) as HistoryEntry[],
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    sentAt: iso(row.sent_at),
  };
}

function toNotification(head: HeadRow, deliveryIds: string[], data: Record<string, unknown>): Notification {
  return {
    id: head.notification_id,
    type: head.type,
    source: head.source,
    priority: head.priority,
    data,
    channels: head.channels ? (JSON.parse(head.channels) as Channel[]) : null,
    sendAt: iso(head.send_at),
    dedupeKey: head.dedupe_key,
    cancelKey: head.cancel_key ?? null,
    requestHash: head.request_hash,
    deliveryIds,
    createdAt: new Date(head.created_at).toISOString(),
    ...(head.plan ? { plan: JSON.parse(head.plan) as string[] } : {}),
  };
}

/** Where an escalation step is: its part of the notification, its recipient, its mark (JSON). */
export interface EscalationRow {
  id: string;
  notification_id: string;
  user_id: string | null;
  head_id: string | null;
  escalation: string;
}

/** The id range of the notification part an escalation step is in (a step's siblings are there). */
function stepRange(row: EscalationRow): [string, string] {
  return rangeOf({ id: row.notification_id, head: row.head_id ?? row.id, ms: 0 });
}

/** Most deliveries one notification can plan (100 recipients with every address), rounded up. */
const MAX_DELIVERIES_PER_NOTIFICATION = 16_384;

/** Where a notification is: its id, its head delivery (null: search its millisecond), its time. */
export interface Located {
  id: string;
  head: string | null;
  ms: number;
}

function rangeOf({ head, ms }: Located): [string, string] {
  if (!head) return [idBoundAt('dlv', ms), idBoundAt('dlv', ms + 1)];
  // The head's millisecond ends the range too: an id near the top of its random space (a crafted
  // one, say) has no successor to count to.
  const endOfMs = `${head.slice(0, 14)}~`;
  try {
    return [head, idAfter(head, MAX_DELIVERIES_PER_NOTIFICATION)];
  } catch {
    return [head, endOfMs];
  }
}

/** The head delivery of a generated notification id (`ntf_<time><random>` → `dlv_<time><random>`). */
export const headOfGeneratedId = (id: string): string | null =>
  idTimeMs('ntf', id) === null ? null : `dlv_${id.slice(4)}`;

/**
 * SQL matching the rows of `head`'s notification: its millisecond of the time-ordered key (the
 * first 14 characters, `dlv_` and the time) and its notification id.
 */
const SAME_NOTIFICATION = (row: string, head: string) =>
  `${row}.id >= substr(${head}.id, 1, 14) AND ${row}.id < substr(${head}.id, 1, 14) || '~' AND ${row}.notification_id = ${head}.notification_id`;

/** A new delivery row as the router plans it. */
export type NewDelivery = Pick<
  Delivery,
  'id' | 'notificationId' | 'userId' | 'channel' | 'address' | 'status'
> & {
  reason?: string;
  /** Its own send time (a later escalation step), instead of the notification's. */
  sendAtMs?: number;
  /** Its escalation step: `{ step, unless }` (JSON). */
  escalation?: string;
};

/** A notification as ingest writes it: onto its head delivery row (and a key row for a producer id). */
export type NewNotification = Omit<Notification, 'sendAt' | 'deliveryIds' | 'createdAt'> & {
  sendAtMs: number | null;
  /** Whether `id` is the producer's own (its idempotency key), which needs a key row to be found. */
  producerKey: boolean;
};

/** The outcome of one delivery attempt, written in the consumer's single batch. */
export interface Outcome {
  deliveryId: string;
  status: DeliveryStatus;
  reason?: string;
  provider?: string;
  providerMessageId?: string;
  templateVersion?: string;
  /** Whether this outcome counts as an attempt (a provider was called). */
  attempted: boolean;
  /** The providers that answered this attempt with an error (counted with the outcome). */
  errors?: ProviderError[];
}

export interface ListFilters {
  userId?: string;
  type?: string;
  status?: DeliveryStatus;
  channel?: Channel;
  limit: number;
  /** Exclusive upper bound on the notification's created_at/id, from the previous page. */
  cursor?: { createdAt: number; id: string };
}

/** The only code with SQL for notifications and deliveries. */
export class DeliveriesRepo {
  /** This database's counters: every status change here is counted in the same batch. */
  private readonly counters: MetricCountersRepo;

  constructor(
    private readonly db: D1Database,
    private readonly cipher: () => Promise<FieldCipher>,
  ) {
    this.counters = new MetricCountersRepo(db);
  }

  /**
   * The statement counting the rows `where` selects that are not `to` yet, by type and channel.
   * Placed just before the UPDATE that moves exactly those rows to `to`, in its batch, it sees them
   * as that UPDATE will: the count commits with the change, or fails with it.
   */
  private movesCount(to: DeliveryStatus, where: string, params: readonly unknown[]): D1PreparedStatement {
    return this.counters.countStatement(
      `SELECT type, ${deliveryCountSql('channel', `'${to}'`)} AS key, count(*) AS n FROM deliveries
       WHERE (${where}) AND status != '${to}' GROUP BY type, channel`,
      params,
    );
  }

  /** The statement counting notifications accepted here that have no row yet (sends to topics). */
  acceptedCountStatement(types: readonly string[]): D1PreparedStatement {
    return this.counters.countStatement(
      `SELECT value AS type, '${ACCEPTED}' AS key, 1 AS n FROM json_each(?)`,
      [JSON.stringify(types)],
    );
  }

  /**
   * Statements counting new rows before they are inserted, in their batch: each row's counts
   * (`created`, its first status, `accepted` on a notification's first row) unless a row with its
   * id is here already (a page inserted again with INSERT OR IGNORE counts once).
   */
  newRowsCountStatements(
    rows: readonly { id: string; type: string; counts: readonly string[] }[],
  ): D1PreparedStatement[] {
    return chunksOf(rows, NEW_ROWS_PER_COUNT).map((chunk) =>
      this.counters.countStatement(
        `SELECT json_extract(r.value, '$.type') AS type, c.value AS key, 1 AS n
         FROM json_each(?) r, json_each(r.value, '$.counts') c
         WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE id = json_extract(r.value, '$.id'))`,
        [JSON.stringify(chunk)],
      ),
    );
  }

  /**
   * For reading (status, listing, export): a row whose address does not decrypt is shown without
   * it, so one damaged row never breaks a page or an export.
   */
  private async openAddressForReading(row: { id: string; address: string | null }): Promise<Address | null> {
    try {
      return await this.openAddress(row);
    } catch (error) {
      log('error', 'delivery.address_unreadable', { deliveryId: row.id, error: String(error) });
      return null;
    }
  }

  private async openAddress(row: { id: string; address: string | null }): Promise<Address | null> {
    if (row.address === null || isErased(row.address)) return null;
    const cipher = await this.cipher();
    return JSON.parse(await cipher.decrypt(row.address, addressAad(row.id))) as Address;
  }

  private async sealAddress(deliveryId: string, address: Address | null): Promise<string | null> {
    if (address === null) return null;
    return (await this.cipher()).encrypt(JSON.stringify(address), addressAad(deliveryId));
  }

  /**
   * A notification's data as stored on its head row: encrypted like an address (bound to the head's
   * id), except an empty object, which holds nothing.
   */
  private async sealData(headId: string, data: Record<string, unknown>): Promise<string> {
    const json = JSON.stringify(data);
    if (json === EMPTY_DATA) return json;
    return (await this.cipher()).encrypt(json, dataAad(headId));
  }

  /**
   * The data of a head row: decrypted (`enc:`), or JSON as rows written before data was encrypted
   * hold it; erased or absent data is empty. The cipher is only needed for encrypted data.
   * @throws DecryptError or SyntaxError for a damaged value
   */
  private async openData(headId: string | null, stored: string | null): Promise<Record<string, unknown>> {
    if (stored === null || headId === null || isErased(stored)) return {};
    const json = isEncrypted(stored) ? await (await this.cipher()).decrypt(stored, dataAad(headId)) : stored;
    return JSON.parse(json) as Record<string, unknown>;
  }

  /** For reading (status, listing, export): data that cannot be read is shown empty, and logged. */
  private async openDataForReading(head: {
    id: string;
    data: string | null;
  }): Promise<Record<string, unknown>> {
    try {
      return await this.openData(head.id, head.data);
    } catch (error) {
      log('error', 'notification.data_unreadable', { deliveryId: head.id, error: String(error) });
      return {};
    }
  }

  /**
   * When a notification id was accepted, even after its rows were removed: a producer's id from its
   * key row (kept longer than the rows), a generated id from the time it encodes. Null when unknown.
   */
  async acceptedAt(id: string): Promise<number | null> {
    const key = await this.db
      .prepare('SELECT created_at FROM notification_keys WHERE key = ?')
      .bind(id)
      .first<{ created_at: number }>();
    if (key) return key.created_at;
    const head = headOfGeneratedId(id);
    return head ? idTimeMs('dlv', head) : null;
  }

  async getNotification(id: string): Promise<Notification | null> {
    const [notification] = await this.getNotifications([id]);
    return notification ?? null;
  }

  /**
   * Notifications by their public id: a producer's id is looked up in `notification_keys` for its
   * head delivery; a generated id is its head's id. Either way the notification is then one
   * primary-key range from its head, filtered on its id.
   */
  async getNotifications(ids: readonly string[]): Promise<Notification[]> {
    return this.notificationsAt(await this.locate(ids));
  }

  /**
   * Where notifications are, by their public id: a producer's id through its key row (this
   * database's `notification_keys`: the home database's), a generated id through the head it names.
   */
  async locate(ids: readonly string[]): Promise<Located[]> {
    const unique = [...new Set(ids)];
    const keyed = new Map<string, Located>();
    for (const chunk of chunksOf(unique, MAX_PARAMS)) {
      const { results } = await this.db
        .prepare(
          `SELECT key, created_at, head_id FROM notification_keys WHERE key IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(...chunk)
        .all<{ key: string; created_at: number; head_id: string | null }>();
      for (const row of results) keyed.set(row.key, { id: row.key, head: row.head_id, ms: row.created_at });
    }
    return unique.flatMap((id): Located[] => {
      const known = keyed.get(id);
      if (known) return [known];
      const head = headOfGeneratedId(id);
      return head ? [{ id, head, ms: 0 }] : [];
    });
  }

  /** Builds notifications from their rows, one range query per notification in one D1 batch. */
  async notificationsAt(located: readonly Located[]): Promise<Notification[]> {
    if (located.length === 0) return [];
    const out: Notification[] = [];
    for (const chunk of chunksOf(located, MAX_PARAMS)) {
      const results = await this.db.batch<DeliveryRow>(
        chunk.map((where) =>
          this.db
            .prepare(
              'SELECT * FROM deliveries WHERE id >= ? AND id < ? AND notification_id = ? ORDER BY id LIMIT ?',
            )
            .bind(...rangeOf(where), where.id, MAX_DELIVERIES_LISTED + 1),
        ),
      );
      for (const { results: all } of results) {
        // Bounded, so a send to a large topic reads like any other; the lowest id here is a head
        // (a part's head is its first id), so the notification's fields are always among them.
        const rows = all.slice(0, MAX_DELIVERIES_LISTED);
        // Parts of several buckets may share this database: the notification's first head leads.
        const heads = rows.filter((row): row is HeadRow => row.request_hash !== null && row.data !== null);
        const head = heads.find((row) => !row.request_hash.startsWith('part:')) ?? heads[0];
        if (head)
          out.push({
            ...toNotification(
              head,
              rows.map((row) => row.id),
              await this.openDataForReading(head),
            ),
            ...(all.length > rows.length ? { deliveriesTruncated: true } : {}),
          });
      }
    }
    return out;
  }

  /** The next ids of a notification's deliveries here after `after`, in id order. */
  async deliveryIdsAfter(where: Located, after: string | null, limit: number): Promise<string[]> {
    const [from, to] = rangeOf(where);
    const { results } = await this.db
      .prepare(
        'SELECT id FROM deliveries WHERE id >= ? AND id > ? AND id < ? AND notification_id = ? ORDER BY id LIMIT ?',
      )
      .bind(from, after ?? '', to, where.id, limit)
      .all<{ id: string }>();
    return results.map((r) => r.id);
  }

  /** The ids among these that have a row here. */
  async existingIds(ids: readonly string[]): Promise<Set<string>> {
    const rows = await rowsByKey<{ id: string }>(
      this.db,
      { table: 'deliveries', key: 'id', columns: 'id' },
      ids,
    );
    return new Set(rows.map((r) => r.id));
  }

  async getDeliveries(ids: readonly string[]): Promise<Delivery[]> {
    const rows = await rowsByKey<DeliveryRow>(this.db, { table: 'deliveries', key: 'id' }, ids);
    const out = await Promise.all(
      rows.map(async (row) => toDelivery(row, await this.openAddressForReading(row))),
    );
    const order = new Map(ids.map((id, i) => [id, i]));
    return out.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  }

  /**
   * Loads a queue batch's deliveries with their notification's data: one query per 100 ids. A row
   * that cannot be read (its address does not decrypt, its data is not JSON) comes back alone as
   * `unreadable`, with no address, so it fails by itself and its batch goes on. A missing key
   * (the cipher cannot be built at all) still throws: that is the deployment's fault, not the row's.
   */
  async loadForSending(ids: readonly string[]): Promise<Map<string, DeliveryToSend>> {
    const found = new Map<string, DeliveryToSend>();
    await this.cipher();
    for (const chunk of chunksOf([...new Set(ids)], MAX_PARAMS)) {
      const { results } = await this.db
        .prepare(
          `SELECT d.*, h.data AS head_data
           FROM deliveries d LEFT JOIN deliveries h ON h.id = d.head_id
           WHERE d.id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(...chunk)
        .all<DeliveryRow & { head_data: string | null }>();
      for (const row of results) found.set(row.id, await this.toSendable(row));
    }
    return found;
  }

  private async toSendable(row: DeliveryRow & { head_data: string | null }): Promise<DeliveryToSend> {
    const notification = {
      type: row.type,
      priority: row.priority,
      dedupeKey: row.dedupe_key,
      sendAtMs: row.send_at,
      escalation: row.escalation ?? null,
    };
    try {
      const data = await this.openData(row.head_id, row.head_data);
      return { ...toDelivery(row, await this.openAddress(row)), ...notification, data };
    } catch (error) {
      const unreadable = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return { ...toDelivery(row, null), ...notification, data: {}, unreadable };
    }
  }

  /**
   * Statements inserting one notification as its delivery rows (run in one atomic batch): every
   * row carries what sending needs, the first also the notification's data. A producer's id adds
   * its key row. A delivery already handed to its queue is written `queued` (its history says
   * `created`, then `queued`), so no second write follows.
   */
  async insertStatements(
    notification: NewNotification,
    deliveries: readonly NewDelivery[],
    nowMs: number,
    options: { orIgnore?: boolean } = {},
  ): Promise<D1PreparedStatement[]> {
    const at = new Date(nowMs).toISOString();
    const statements: D1PreparedStatement[] = [];
    const headId = deliveries[0]?.id ?? null;
    if (notification.producerKey && headId !== null)
      statements.push(this.keyStatement(notification.id, headId, nowMs));
    const sealed = await Promise.all(deliveries.map((d) => this.sealAddress(d.id, d.address)));
    const data = headId === null ? null : await this.sealData(headId, notification.data);
    for (const [index, d] of deliveries.entries()) {
      const history: HistoryEntry[] =
        d.status === 'queued'
          ? [
              { status: 'created', at },
              { status: 'queued', at },
            ]
          : [{ status: d.status, at, ...(d.reason ? { reason: d.reason } : {}) }];
      const head = index === 0;
      statements.push(
        this.db
          .prepare(
            `INSERT ${options.orIgnore ? 'OR IGNORE ' : ''}INTO deliveries (id, notification_id, user_id, channel, address, status, reason, history, created_at, updated_at,
               type, priority, send_at, dedupe_key, source, data, channels, request_hash, head_id, plan, cancel_key,
               escalation)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .bind(
            d.id,
            d.notificationId,
            d.userId,
            d.channel,
            sealed[index] ?? null,
            d.status,
            d.reason ?? null,
            JSON.stringify(history),
            nowMs,
            nowMs,
            notification.type,
            notification.priority,
            d.sendAtMs ?? notification.sendAtMs,
            notification.dedupeKey,
            head ? notification.source : null,
            head ? data : null,
            head && notification.channels ? JSON.stringify(notification.channels) : null,
            head ? notification.requestHash : null,
            headId,
            head && notification.plan ? JSON.stringify(notification.plan) : null,
            head ? notification.cancelKey : null,
            d.escalation ?? null,
          ),
      );
    }
    return statements;
  }

  /**
   * Releases producer ids whose rows never came (a write that failed after the key row, or rows
   * retention removed): key rows of these ids older than `olderThanMs`. A newer one may belong to
   * a request still writing its rows, and is kept.
   */
  async releaseKeys(keys: readonly string[], olderThanMs: number): Promise<void> {
    for (const chunk of chunksOf(keys, MAX_PARAMS - 1)) {
      await this.db
        .prepare(
          `DELETE FROM notification_keys WHERE created_at < ? AND key IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(olderThanMs, ...chunk)
        .run();
    }
  }

  /** Removes the key row of a producer's id if it names this head (a request's own row only). */
  releaseKeyStatement(key: string, headId: string | null): D1PreparedStatement {
    return this.db.prepare('DELETE FROM notification_keys WHERE key = ? AND head_id IS ?').bind(key, headId);
  }

  /** The key row of a producer's own notification id, naming its (first) head delivery. */
  keyStatement(key: string, headId: string | null, nowMs: number): D1PreparedStatement {
    return this.db
      .prepare('INSERT INTO notification_keys (key, created_at, head_id) VALUES (?, ?, ?)')
      .bind(key, nowMs, headId);
  }

  /** Moves `created` deliveries to `queued` after the queue accepted them. */
  async markQueued(ids: readonly string[], nowMs: number): Promise<void> {
    if (ids.length === 0) return;
    const entry = JSON.stringify({ status: 'queued', at: new Date(nowMs).toISOString() });
    const count = this.movesCount('queued', "status = 'created' AND id IN (SELECT value FROM json_each(?))", [
      JSON.stringify(ids),
    ]);
    const statements = chunksOf(ids, MAX_PARAMS - 3).map((chunk) =>
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'queued', updated_at = ?, history = json_insert(history, '$[#]', json(?))
           WHERE status = 'created' AND id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(nowMs, entry, ...chunk),
    );
    await this.db.batch([count, ...statements]);
  }

  /**
   * SQL selecting what these outcomes change, as the rows are when it runs (`type`, `key`, `n`
   * rows, parameters ?1 and ?2): each status they move, and the providers' error answers. An answer
   * just `received` counts its errors whatever the row does with it (a cancel may have come
   * meanwhile: the provider still answered); a travelling one only when the row takes it, so a
   * copy recorded twice by two consumers counts once.
   */
  private outcomeCountsSql(
    outcomes: readonly Outcome[],
    received: boolean,
  ): { sql: string; params: unknown[] } {
    const planned = outcomes.map((o) => ({
      id: o.deliveryId,
      status: o.status,
      may: mayHaveGone(o),
      ...(o.errors?.length ? { errors: o.errors } : {}),
    }));
    return {
      sql: `WITH o AS (
         SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.status') AS target,
                json_extract(value, '$.may') AS may, json_extract(value, '$.errors') AS errors
         FROM json_each(?1)),
       w AS (
         SELECT d.type, d.channel, d.status AS was, d.sent_at, o.target, o.may, o.errors
         FROM o JOIN deliveries d ON d.id = o.id)
       SELECT type, ${deliveryCountSql('channel', 'target')} AS key, 1 AS n FROM w
       WHERE ${outcomeMoves('was', 'may')} AND was != target
       UNION ALL
       SELECT w.type, ${providerErrorCountSql('w.channel', 'e.value')}, 1 FROM w, json_each(w.errors) e
       WHERE ?2 = 1 OR ${outcomeWrites('w.was', 'w.sent_at', 'w.may')}`,
      params: [JSON.stringify(planned), received ? 1 : 0],
    };
  }

  /**
   * Statements recording outcomes (one each, for one batch; travelling answers count their errors
   * only when the row takes them), after the statement counting what they change (see
   * `outcomeCountsSql`) and adding, in the same row per type, the counts `answered` brings: those
   * of provider answers committed earlier on their own (`answerStatements`), added with this
   * commit or not at all. With no outcome, only that statement.
   */
  outcomeStatements(
    outcomes: readonly Outcome[],
    nowMs: number,
    options: { answered?: readonly CountIncrement[] } = {},
  ): D1PreparedStatement[] {
    const answered = options.answered ?? [];
    if (outcomes.length === 0) return answered.length > 0 ? [this.counters.addStatement(answered)] : [];
    const { sql, params } = this.outcomeCountsSql(outcomes, false);
    const count =
      answered.length > 0
        ? this.counters.countStatement(`${sql}\n       UNION ALL ${knownCountsSql('?3')}`, [
            ...params,
            JSON.stringify(answered),
          ])
        : this.counters.countStatement(sql, params);
    return [count, ...outcomes.map((o) => this.outcomeStatement(o, nowMs))];
  }

  /**
   * A provider's answer as it arrives, for a commit of its own: the statement recording it (one row
   * written) after a SELECT of what it changes, read in the same batch as the UPDATE will find the
   * row (nothing written). Nothing is counted here: `answerCounts` reads that SELECT's answer, and
   * the batch's own commit adds it (`outcomeStatements`' `answered`).
   */
  answerStatements(outcome: Outcome, nowMs: number): D1PreparedStatement[] {
    const { sql, params } = this.outcomeCountsSql([outcome], true);
    return [this.db.prepare(sql).bind(...params), this.outcomeStatement(outcome, nowMs)];
  }

  /** What an answer's commit found to count, from its results (`answerStatements`' order). */
  static answerCounts(results: readonly D1Result[]): CountIncrement[] {
    return countsOf(results[0]?.results);
  }

  /**
   * Statement recording one attempt's outcome (not counted: `outcomeStatements` counts). It moves
   * a delivery still waiting; a late duplicate consumer cannot turn `sent` back into `failed` (the
   * WHERE clause refuses a status final for sending). A callback that landed first (delivered,
   * bounced, …) keeps its further status: the outcome adds the provider, message id, send time and
   * its history entry, once. A delivery canceled (or an escalation step skipped) while a consumer
   * was already handing it to a provider takes the provider's answer when it may have gone out
   * (sent, delivered, unknown): its status never claims otherwise.
   */
  outcomeStatement(given: Outcome, nowMs: number): D1PreparedStatement {
    // Provider answers often echo the address they refused: keep the reason, never the address.
    const outcome = given.reason ? { ...given, reason: redact(given.reason) } : given;
    const entry: HistoryEntry = {
      status: outcome.status,
      at: new Date(nowMs).toISOString(),
      ...(outcome.reason ? { reason: outcome.reason } : {}),
      ...(outcome.provider ? { provider: outcome.provider } : {}),
    };
    return this.db
      .prepare(
        `UPDATE deliveries SET
           status = CASE WHEN ${outcomeMoves('status', '?1')} THEN ?2 ELSE status END,
           reason = CASE WHEN ${outcomeMoves('status', '?1')} THEN ?3 ELSE reason END,
           provider = coalesce(?4, provider),
           provider_message_id = coalesce(?5, provider_message_id), template_version = coalesce(?6, template_version),
           attempts = attempts + ?7, updated_at = ?8, sent_at = CASE WHEN ?2 IN ('sent', 'delivered') THEN ?8 ELSE sent_at END,
           history = json_insert(history, '$[#]', json(?9))
         WHERE id = ?10 AND ${outcomeWrites('status', 'sent_at', '?1')}`,
      )
      .bind(
        mayHaveGone(outcome),
        outcome.status,
        outcome.reason ?? null,
        outcome.provider ?? null,
        outcome.providerMessageId ?? null,
        outcome.templateVersion ?? null,
        outcome.attempted ? 1 : 0,
        nowMs,
        JSON.stringify(entry),
        outcome.deliveryId,
      );
  }

  /** Cancels those of these deliveries still waiting to be sent (one row written each); their ids. */
  async cancel(ids: readonly string[], nowMs: number): Promise<string[]> {
    const entry = JSON.stringify({
      status: 'canceled',
      at: new Date(nowMs).toISOString(),
      reason: CANCELED_REASON,
    });
    const canceled: string[] = [];
    const where = `id IN (SELECT value FROM json_each(?)) AND status IN (${WAITING}, 'digested')`;
    for (const chunk of chunksOf(ids, 500)) {
      const [, update] = await this.db.batch<{ id: string }>([
        this.movesCount('canceled', where, [JSON.stringify(chunk)]),
        this.db
          .prepare(
            `UPDATE deliveries SET status = 'canceled', reason = ?, updated_at = ?,
               history = json_insert(history, '$[#]', json(?))
             WHERE ${where} RETURNING id`,
          )
          .bind(CANCELED_REASON, nowMs, entry, JSON.stringify(chunk)),
      ]);
      canceled.push(...(update?.results ?? []).map((row) => row.id));
    }
    return canceled;
  }

  /** The escalation steps among these deliveries: where each is, and its mark. */
  async escalationRows(ids: readonly string[]): Promise<EscalationRow[]> {
    const { results } = await this.db
      .prepare(
        `SELECT id, notification_id, user_id, head_id, escalation FROM deliveries
         WHERE id IN (SELECT value FROM json_each(?)) AND escalation IS NOT NULL`,
      )
      .bind(JSON.stringify(ids))
      .all<EscalationRow>();
    return results;
  }

  /**
   * Skips the recipient's later steps still waiting whose `unless` names `status` (one row written
   * each); their ids. Only within the notification part's id range: no index needed. A step a
   * consumer is sending at that moment keeps what the provider answers (see outcomeStatement).
   */
  async skipLaterSteps(
    row: EscalationRow,
    step: number,
    status: DeliveryStatus,
    nowMs: number,
  ): Promise<string[]> {
    const reason = `escalation: skipped, an earlier step was ${status}`;
    const entry = JSON.stringify({ status: 'skipped', at: new Date(nowMs).toISOString(), reason });
    const [from, to] = stepRange(row);
    const where = `id >= ? AND id < ? AND notification_id = ? AND user_id IS ? AND status IN (${WAITING})
      AND json_extract(escalation, '$.step') > ?
      AND EXISTS (SELECT 1 FROM json_each(escalation, '$.unless') WHERE value = ?)`;
    const params = [from, to, row.notification_id, row.user_id, step, status];
    const [, update] = await this.db.batch<{ id: string }>([
      this.movesCount('skipped', where, params),
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'skipped', reason = ?, updated_at = ?,
             history = json_insert(history, '$[#]', json(?))
           WHERE ${where} RETURNING id`,
        )
        .bind(reason, nowMs, entry, ...params),
    ]);
    return (update?.results ?? []).map((r) => r.id);
  }

  /** The statuses of the recipient's deliveries of one step. */
  async stepStatuses(row: EscalationRow, step: number): Promise<DeliveryStatus[]> {
    const [from, to] = stepRange(row);
    const { results } = await this.db
      .prepare(
        `SELECT status FROM deliveries WHERE id >= ? AND id < ? AND notification_id = ? AND user_id IS ?
           AND json_extract(escalation, '$.step') = ?`,
      )
      .bind(from, to, row.notification_id, row.user_id, step)
      .all<{ status: DeliveryStatus }>();
    return results.map((r) => r.status);
  }

  /** Brings a waiting step forward: due now and `queued` (its message follows); their ids and channels. */
  async bringForward(
    row: EscalationRow,
    step: number,
    nowMs: number,
  ): Promise<{ id: string; channel: Channel }[]> {
    const reason = 'escalation: brought forward, an earlier step failed';
    const entry = JSON.stringify({ status: 'queued', at: new Date(nowMs).toISOString(), reason });
    const [from, to] = stepRange(row);
    const where = `id >= ? AND id < ? AND notification_id = ? AND user_id IS ? AND status IN (${WAITING})
      AND send_at > ? AND json_extract(escalation, '$.step') = ?`;
    const params = [from, to, row.notification_id, row.user_id, nowMs, step];
    const [, update] = await this.db.batch<{ id: string; channel: Channel }>([
      this.movesCount('queued', where, params),
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'queued', send_at = ?, reason = ?, updated_at = ?,
             history = json_insert(history, '$[#]', json(?))
           WHERE ${where} RETURNING id, channel`,
        )
        .bind(nowMs, reason, nowMs, entry, ...params),
    ]);
    return update?.results ?? [];
  }

  /** A digest's held items name the delivery that carried them (their status stays `digested`). */
  async digestedInto(itemIds: readonly string[], carrierId: string, nowMs: number): Promise<void> {
    await this.db
      .prepare(
        `UPDATE deliveries SET reason = ?1, updated_at = ?2
         WHERE id IN (SELECT value FROM json_each(?3)) AND id != ?4 AND status = 'digested'`,
      )
      .bind(`digested into ${carrierId}`, nowMs, JSON.stringify(itemIds), carrierId)
      .run();
  }

  /**
   * Makes a held item the digest's carrier: `queued` again, to be sent with the items (also when
   * an earlier hand-over of it failed, so it is already `queued`); whether it could.
   */
  async claimCarrier(id: string, count: number, nowMs: number): Promise<boolean> {
    const reason = `carries a digest of ${count}`;
    const entry = JSON.stringify({ status: 'queued', at: new Date(nowMs).toISOString(), reason });
    const where = "id = ? AND status IN ('digested', 'queued')";
    const [, update] = await this.db.batch<{ id: string }>([
      this.movesCount('queued', where, [id]),
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'queued', reason = ?, updated_at = ?,
             history = CASE WHEN status = 'digested' THEN json_insert(history, '$[#]', json(?)) ELSE history END
           WHERE ${where} RETURNING id`,
        )
        .bind(reason, nowMs, entry, id),
    ]);
    return (update?.results.length ?? 0) > 0;
  }

  /** The notifications here whose producer gave them this `cancelKey` (by its partial index). */
  async notificationsWithCancelKey(cancelKey: string, limit: number): Promise<string[]> {
    const { results } = await this.db
      .prepare('SELECT DISTINCT notification_id AS id FROM deliveries WHERE cancel_key = ? LIMIT ?')
      .bind(cancelKey, limit)
      .all<{ id: string }>();
    return results.map((row) => row.id);
  }

  /**
   * Statements giving failed deliveries fresh attempts (dead-letter replay): back to `created`, so
   * the enqueue that follows moves them to `queued` like any new delivery. Only the deliveries whose
   * dead letter this replay claimed (`replayed_at` = `claimedAtMs`, in the same batch) are reset,
   * so two replays running at once never both reset, and never both enqueue, one delivery.
   */
  resetForReplayStatements(
    ids: readonly string[],
    claimedAtMs: number,
    nowMs: number,
  ): D1PreparedStatement[] {
    const entry = JSON.stringify({
      status: 'created',
      at: new Date(nowMs).toISOString(),
      reason: 'replayed from the dead-letter queue',
    });
    const claimed =
      'EXISTS (SELECT 1 FROM dead_letters dl WHERE dl.delivery_id = deliveries.id AND dl.replayed_at = ?)';
    return [
      this.movesCount(
        'created',
        `status = 'failed' AND id IN (SELECT value FROM json_each(?)) AND ${claimed}`,
        [JSON.stringify(ids), claimedAtMs],
      ),
      ...chunksOf(ids, MAX_PARAMS - 3).map((chunk) =>
        this.db
          .prepare(
            `UPDATE deliveries SET status = 'created', attempts = 0, reason = NULL, updated_at = ?,
               history = json_insert(history, '$[#]', json(?))
             WHERE status = 'failed' AND id IN (${chunk.map(() => '?').join(',')}) AND ${claimed}`,
          )
          .bind(nowMs, entry, ...chunk, claimedAtMs),
      ),
    ];
  }

  /**
   * Claims `created` deliveries not touched since `olderThanMs` within a range of ids for the
   * sweeper, in id order: the UPDATE … RETURNING makes the claim atomic, so two sweepers never
   * enqueue one delivery twice. `after` is exclusive, so the next call starts after the last claimed
   * id. Channels whose queue refused this tick are skipped.
   */
  claimStuck(
    range: { after: string; before: string },
    olderThanMs: number,
    limit: number,
    nowMs: number,
    skipChannels: readonly Channel[] = [],
  ): Promise<{ id: string; channel: Channel }[]> {
    return this.claimRange(
      range,
      { limit, nowMs, skipChannels, reason: 're-enqueued by the sweeper' },
      {
        sql: "status = 'created' AND updated_at < ?",
        params: [olderThanMs],
      },
    );
  }

  /**
   * Gives claimed deliveries back (`created`) when their enqueue failed, with a history entry.
   * `updatedAtMs` says when they count as last touched: now for the sweeper (its next minute takes
   * them), the reaper's own cutoff for the reaper (its next pass takes them again).
   */
  async unclaim(ids: readonly string[], nowMs: number, updatedAtMs = nowMs): Promise<void> {
    const entry = JSON.stringify({
      status: 'created',
      at: new Date(nowMs).toISOString(),
      reason: 'the queue refused the re-enqueue; left for the next pass',
    });
    if (ids.length === 0) return;
    const count = this.movesCount('created', "status = 'queued' AND id IN (SELECT value FROM json_each(?))", [
      JSON.stringify(ids),
    ]);
    const statements = chunksOf(ids, MAX_PARAMS - 2).map((chunk) =>
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'created', updated_at = ?, history = json_insert(history, '$[#]', json(?))
           WHERE status = 'queued' AND id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(updatedAtMs, entry, ...chunk),
    );
    await this.db.batch([count, ...statements]);
  }

  /**
   * One page of deliveries (by id, after `cursor`) whose address or data needs (re-)encrypting
   * under the current key: written under an older key, or data still in clear from before data
   * was encrypted. Each statement applies only if the row did not change since it was read.
   */
  async rotationPage(
    cursor: string,
    limit: number,
  ): Promise<{ statements: D1PreparedStatement[]; unreadable: number; next: string | null }> {
    const cipher = await this.cipher();
    const { results } = await this.db
      .prepare('SELECT id, address, data FROM deliveries WHERE id > ? ORDER BY id LIMIT ?')
      .bind(cursor, limit)
      .all<{ id: string; address: string | null; data: string | null }>();
    const stale = (value: string | null) =>
      value !== null && value !== EMPTY_DATA && !isErased(value) && cipher.needsRotation(value);
    const statements: D1PreparedStatement[] = [];
    let unreadable = 0;
    for (const row of results) {
      if (!stale(row.address) && !stale(row.data)) continue;
      try {
        const address = stale(row.address)
          ? await this.sealAddress(row.id, await this.openAddress(row))
          : row.address;
        const data = stale(row.data)
          ? await this.sealData(row.id, await this.openData(row.id, row.data))
          : row.data;
        statements.push(
          this.db
            .prepare(
              'UPDATE deliveries SET address = ?, data = ? WHERE id = ? AND address IS ? AND data IS ?',
            )
            .bind(address, data, row.id, row.address, row.data),
        );
      } catch {
        unreadable += 1;
      }
    }
    return { statements, unreadable, next: results.length === limit ? (results.at(-1)?.id ?? null) : null };
  }

  /**
   * Erasure of a user's deliveries (one scan each: there is no index on user_id). The deliveries
   * keep their ids, statuses and history; their address becomes the erasure marker, and so does
   * the template data of every notification whose deliveries are all this user's (data a
   * notification shares with other recipients is theirs too, and stays: here, or in another
   * database, `sharedElsewhere`). Two statements, for the caller's batch; the data one first (it
   * finds the notifications through the user's rows).
   */
  eraseStatements(
    userId: string,
    nowMs: number,
    contactErased: boolean,
    sharedElsewhere: readonly string[] = [],
  ): D1PreparedStatement[] {
    const marker = erasedMarker(nowMs, contactErased);
    return [
      this.db
        .prepare(
          `UPDATE deliveries AS h SET data = ?
           WHERE h.request_hash IS NOT NULL AND h.data IS NOT NULL AND h.data NOT LIKE '${ERASED}%'
             AND (h.id IN (SELECT head_id FROM deliveries WHERE user_id = ? AND head_id IS NOT NULL)
               OR h.notification_id IN (SELECT notification_id FROM deliveries WHERE user_id = ? AND head_id IS NULL))
             AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE ${SAME_NOTIFICATION('o', 'h')} AND o.user_id IS NOT ?)
             AND h.notification_id NOT IN (SELECT value FROM json_each(?))`,
        )
        .bind(marker, userId, userId, userId, JSON.stringify(sharedElsewhere)),
      this.db
        .prepare(
          `UPDATE deliveries SET address = ? WHERE user_id = ? AND (address IS NULL OR address NOT LIKE '${ERASED}%')`,
        )
        .bind(marker, userId),
    ];
  }

  /** The notifications with a delivery to this user here, and their millisecond (a scan). */
  async notificationsOf(userId: string): Promise<Located[]> {
    const { results } = await this.db
      .prepare(
        'SELECT notification_id AS id, min(created_at) AS ms FROM deliveries WHERE user_id = ? GROUP BY notification_id',
      )
      .bind(userId)
      .all<{ id: string; ms: number }>();
    return results.map((row) => ({ id: row.id, head: null, ms: row.ms }));
  }

  /** Which of these notifications have a delivery here to someone other than this user. */
  async sharedWithOthers(located: readonly Located[], userId: string): Promise<Set<string>> {
    const shared = new Set<string>();
    for (const chunk of chunksOf(located, MAX_PARAMS)) {
      const answers = await this.db.batch<{ id: string }>(
        chunk.map((where) =>
          this.db
            .prepare(
              'SELECT notification_id AS id FROM deliveries WHERE id >= ? AND id < ? AND notification_id = ? AND user_id IS NOT ? LIMIT 1',
            )
            .bind(...rangeOf(where), where.id, userId),
        ),
      );
      for (const answer of answers) for (const row of answer.results) shared.add(row.id);
    }
    return shared;
  }

  /** Whether Herald holds any delivery for this user id (a scan that stops at the first). */
  async hasDeliveriesFor(userId: string): Promise<boolean> {
    const row = await this.db
      .prepare('SELECT 1 AS found FROM deliveries WHERE user_id = ? LIMIT 1')
      .bind(userId)
      .first();
    return row !== null;
  }

  /** What erasures of this user left (their markers), or null when none ran. */
  async erasureOf(userId: string): Promise<ErasureRecord | null> {
    const { results } = await this.db
      .prepare(
        `SELECT address AS marker, count(*) AS deliveries, sum(data LIKE '${ERASED}%') AS notifications
         FROM deliveries WHERE user_id = ? AND address LIKE '${ERASED}%' GROUP BY address`,
      )
      .bind(userId)
      .all<{ marker: string; deliveries: number; notifications: number | null }>();
    if (results.length === 0) return null;
    let atMs = 0;
    const record = { contact: false, deliveries: 0, notifications: 0 };
    for (const row of results) {
      const [, ms = '0', contact] = row.marker.split(':');
      atMs = Math.max(atMs, Number(ms) || 0);
      record.contact ||= contact === 'contact';
      record.deliveries += row.deliveries;
      record.notifications += row.notifications ?? 0;
    }
    return { at: new Date(atMs).toISOString(), ...record };
  }

  /** A user's deliveries, newest first (for the data export). */
  async listForUser(userId: string, limit: number): Promise<Delivery[]> {
    const { results } = await this.db
      .prepare('SELECT * FROM deliveries WHERE user_id = ? ORDER BY created_at DESC LIMIT ?')
      .bind(userId, limit)
      .all<DeliveryRow>();
    return Promise.all(results.map(async (row) => toDelivery(row, await this.openAddressForReading(row))));
  }

  /**
   * Lists notifications newest first, filtered through their deliveries. Head rows are scanned
   * (no index: see migration 0007); a delivery filter looks at the head's own millisecond range.
   */
  async list(filters: ListFilters): Promise<Notification[]> {
    const where = ['h.request_hash IS NOT NULL'];
    const params: unknown[] = [];
    const deliveryFilters: string[] = [];
    if (filters.userId !== undefined) {
      deliveryFilters.push('d.user_id = ?');
      params.push(filters.userId);
    }
    if (filters.status !== undefined) {
      deliveryFilters.push('d.status = ?');
      params.push(filters.status);
    }
    if (filters.channel !== undefined) {
      deliveryFilters.push('d.channel = ?');
      params.push(filters.channel);
    }
    if (deliveryFilters.length > 0) {
      where.push(
        `EXISTS (SELECT 1 FROM deliveries d WHERE ${SAME_NOTIFICATION('d', 'h')} AND ${deliveryFilters.join(' AND ')})`,
      );
    }
    if (filters.type !== undefined) {
      where.push('h.type = ?');
      params.push(filters.type);
    }
    if (filters.cursor) {
      where.push('(h.created_at < ? OR (h.created_at = ? AND h.notification_id < ?))');
      params.push(filters.cursor.createdAt, filters.cursor.createdAt, filters.cursor.id);
    }
    // Parts of one notification in several buckets may share this database, each with a head:
    // one row per notification, or a page would hold fewer notifications than asked for.
    const { results } = await this.db
      .prepare(
        `SELECT h.notification_id AS id, h.created_at AS ms, min(h.id) AS head_id,
                max(k.head_id IS NULL AND k.key IS NOT NULL) AS legacy
         FROM deliveries h LEFT JOIN notification_keys k ON k.key = h.notification_id
         WHERE ${where.join(' AND ')}
         GROUP BY h.notification_id
         ORDER BY h.created_at DESC, h.notification_id DESC LIMIT ?`,
      )
      .bind(...params, filters.limit)
      .all<{ id: string; ms: number; head_id: string; legacy: number }>();
    const byId = new Map(
      (
        await this.notificationsAt(
          results.map((row) => ({ id: row.id, head: row.legacy ? null : row.head_id, ms: row.ms })),
        )
      ).map((n) => [n.id, n]),
    );
    return results.flatMap(({ id }) => byId.get(id) ?? []);
  }

  /**
   * Claims deliveries the reaper found without a message, in id order within a range of ids
   * (`after` exclusive): still waiting (`created`, `queued`, `deferred`), not touched since
   * `quietSinceMs`, and not scheduled after it either. The UPDATE … RETURNING makes the claim
   * atomic (two crons never both take one) and writes the history entry.
   */
  claimLost(
    range: { after: string; before: string },
    quietSinceMs: number,
    limit: number,
    nowMs: number,
    skipChannels: readonly Channel[] = [],
  ): Promise<{ id: string; channel: Channel }[]> {
    return this.claimRange(
      range,
      { limit, nowMs, skipChannels, reason: 're-enqueued by the reaper' },
      {
        sql: "status IN ('created', 'queued', 'deferred', 'scheduled') AND updated_at < ? AND coalesce(send_at, 0) < ?",
        params: [quietSinceMs, quietSinceMs],
      },
    );
  }

  /**
   * Claims up to `limit` rows of an id range (`after` exclusive) that match `where`, in id order,
   * as `queued` with a history entry. One read finds them; then one batch counts and claims exactly
   * those rows, both re-checking `where` (so two crons never take, nor count, one row) without
   * scanning the range again. Channels in `skipChannels` are left alone, and so are rows of a
   * bucket locked here (moving: the lock would refuse the whole batch).
   */
  private async claimRange(
    range: { after: string; before: string },
    claim: { limit: number; nowMs: number; skipChannels: readonly Channel[]; reason: string },
    where: { sql: string; params: readonly unknown[] },
  ): Promise<{ id: string; channel: Channel }[]> {
    const skip =
      claim.skipChannels.length > 0
        ? `AND channel NOT IN (${claim.skipChannels.map(() => '?').join(',')})`
        : '';
    const { results: found } = await this.db
      .prepare(
        `SELECT id FROM deliveries WHERE id > ? AND id < ? AND ${where.sql} ${skip} AND ${unlockedSql('id')}
         ORDER BY id LIMIT ?`,
      )
      .bind(range.after, range.before, ...where.params, ...claim.skipChannels, claim.limit)
      .all<{ id: string }>();
    if (found.length === 0) return [];
    const entry = JSON.stringify({
      status: 'queued',
      at: new Date(claim.nowMs).toISOString(),
      reason: claim.reason,
    });
    const claimed = `id IN (SELECT value FROM json_each(?)) AND ${where.sql} AND ${unlockedSql('id')}`;
    const params = [JSON.stringify(found.map((row) => row.id)), ...where.params];
    const [, update] = await this.db.batch<{ id: string; channel: Channel }>([
      this.movesCount('queued', claimed, params),
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'queued', updated_at = ?, history = json_insert(history, '$[#]', json(?))
           WHERE ${claimed} RETURNING id, channel`,
        )
        .bind(claim.nowMs, entry, ...params),
    ]);
    return update?.results ?? [];
  }

  /**
   * Statements returning replayed deliveries whose enqueue the queue refused to `failed` (from
   * `created`, where the replay left them), so they stay visible and replayable rather than
   * waiting, unsent, outside every sweep.
   */
  failUnsentReplayStatements(ids: readonly string[], nowMs: number): D1PreparedStatement[] {
    const reason = 'replay not enqueued (the queue refused it); replay it again';
    const entry = JSON.stringify({ status: 'failed', at: new Date(nowMs).toISOString(), reason });
    if (ids.length === 0) return [];
    return [
      this.movesCount('failed', "status = 'created' AND id IN (SELECT value FROM json_each(?))", [
        JSON.stringify(ids),
      ]),
      ...chunksOf(ids, MAX_PARAMS - 3).map((chunk) =>
        this.db
          .prepare(
            `UPDATE deliveries SET status = 'failed', reason = ?, updated_at = ?, history = json_insert(history, '$[#]', json(?))
             WHERE status = 'created' AND id IN (${chunk.map(() => '?').join(',')})`,
          )
          .bind(reason, nowMs, entry, ...chunk),
      ),
    ];
  }

  /**
   * The oldest delivery rows created before `beforeId` (time-ordered ids), as stored (address and
   * data still encrypted), whole notifications only: the rows of the last notification the limit
   * cut are left for the next call, since a notification's data lives on its head row. Rows of a
   * bucket locked here (moving) wait for their new database.
   */
  async oldestBefore(beforeId: string, limit: number): Promise<Record<string, unknown>[]> {
    const { results } = await this.db
      .prepare(`SELECT * FROM deliveries WHERE id < ? AND ${unlockedSql('id')} ORDER BY id LIMIT ?`)
      .bind(beforeId, limit + 1)
      .all<Record<string, unknown>>();
    if (results.length <= limit) return results;
    const page = results.slice(0, limit);
    const cutHead = results[limit]?.head_id;
    if (cutHead === null || cutHead === undefined) return page;
    const whole = page.filter((row) => row.head_id !== cutHead);
    // One notification larger than the whole page is taken in parts rather than never.
    return whole.length > 0 ? whole : page;
  }

  /** Statements removing delivery rows by id (one row written each). */
  removeStatements(ids: readonly string[]): D1PreparedStatement[] {
    return chunksOf(ids, MAX_PARAMS).map((chunk) =>
      this.db
        .prepare(`DELETE FROM deliveries WHERE id IN (${chunk.map(() => '?').join(',')})`)
        .bind(...chunk),
    );
  }

  /**
   * Statement removing producer ids (idempotency keys) older than `beforeMs`, at most `limit`: kept
   * past their notification's own removal so that such an id still answers `expired` meanwhile.
   */
  removeKeysStatement(beforeMs: number, limit: number): D1PreparedStatement {
    return this.db
      .prepare(
        'DELETE FROM notification_keys WHERE key IN (SELECT key FROM notification_keys WHERE created_at < ? LIMIT ?)',
      )
      .bind(beforeMs, limit);
  }
}
