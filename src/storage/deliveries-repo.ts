import type { Address } from '../domain/address';
import type { Channel, Priority } from '../domain/channels';
import type { Delivery, DeliveryToSend, Notification } from '../domain/delivery';
import type { DeliveryStatus, HistoryEntry } from '../domain/status';
import type { FieldCipher } from '../lib/field-crypto';
import { redact } from '../lib/redact';

const MAX_PARAMS = 100;

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
}

interface NotificationRow {
  id: string;
  type: string;
  source: string | null;
  priority: Priority;
  data: string;
  channels: string | null;
  send_at: number | null;
  dedupe_key: string | null;
  request_hash: string;
  delivery_ids: string;
  created_at: number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The address is personal data: encrypted, bound to the delivery id. */
const addressAad = (deliveryId: string) => `deliveries.address:${deliveryId}`;

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

function toNotification(row: NotificationRow): Notification {
  return {
    id: row.id,
    type: row.type,
    source: row.source,
    priority: row.priority,
    data: JSON.parse(row.data) as Record<string, unknown>,
    channels: row.channels ? (JSON.parse(row.channels) as Channel[]) : null,
    sendAt: iso(row.send_at),
    dedupeKey: row.dedupe_key,
    requestHash: row.request_hash,
    deliveryIds: JSON.parse(row.delivery_ids) as string[],
    createdAt: new Date(row.created_at).toISOString(),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A new delivery row as the router plans it. */
export interface NewDelivery {
  id: string;
  notificationId: string;
  userId: string | null;
  channel: Channel;
  address: Address | null;
  status: DeliveryStatus;
  reason?: string;
}

/** A new notification row. */
export interface NewNotification {
  id: string;
  type: string;
  source: string | null;
  priority: Priority;
  data: Record<string, unknown>;
  channels: Channel[] | null;
  sendAtMs: number | null;
  dedupeKey: string | null;
  requestHash: string;
  deliveryIds: string[];
}

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
  constructor(
    private readonly db: D1Database,
    private readonly cipher: () => Promise<FieldCipher>,
  ) {}

  private async openAddress(row: { id: string; address: string | null }): Promise<Address | null> {
    if (row.address === null) return null;
    const cipher = await this.cipher();
    return JSON.parse(await cipher.decrypt(row.address, addressAad(row.id))) as Address;
  }

  private async sealAddress(deliveryId: string, address: Address | null): Promise<string | null> {
    if (address === null) return null;
    return (await this.cipher()).encrypt(JSON.stringify(address), addressAad(deliveryId));
  }

  async getNotification(id: string): Promise<Notification | null> {
    const row = await this.db
      .prepare('SELECT * FROM notifications WHERE id = ?')
      .bind(id)
      .first<NotificationRow>();
    return row ? toNotification(row) : null;
  }

  async getDeliveries(ids: readonly string[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const chunk of chunks(ids, MAX_PARAMS)) {
      const { results } = await this.db
        .prepare(`SELECT * FROM deliveries WHERE id IN (${chunk.map(() => '?').join(',')})`)
        .bind(...chunk)
        .all<DeliveryRow>();
      out.push(
        ...(await Promise.all(results.map(async (row) => toDelivery(row, await this.openAddress(row))))),
      );
    }
    const order = new Map(ids.map((id, i) => [id, i]));
    return out.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  }

  /** Loads a queue batch's deliveries with their notification fields: one query per 100 ids. */
  async loadForSending(ids: readonly string[]): Promise<Map<string, DeliveryToSend>> {
    const found = new Map<string, DeliveryToSend>();
    for (const chunk of chunks([...new Set(ids)], MAX_PARAMS)) {
      const { results } = await this.db
        .prepare(
          `SELECT d.*, n.type AS n_type, n.priority AS n_priority, n.data AS n_data, n.dedupe_key AS n_dedupe_key,
             n.send_at AS n_send_at
           FROM deliveries d JOIN notifications n ON n.id = d.notification_id
           WHERE d.id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(...chunk)
        .all<
          DeliveryRow & {
            n_type: string;
            n_priority: Priority;
            n_data: string;
            n_dedupe_key: string | null;
            n_send_at: number | null;
          }
        >();
      for (const row of results) {
        found.set(row.id, {
          ...toDelivery(row, await this.openAddress(row)),
          type: row.n_type,
          priority: row.n_priority,
          data: JSON.parse(row.n_data) as Record<string, unknown>,
          dedupeKey: row.n_dedupe_key,
          sendAtMs: row.n_send_at,
        });
      }
    }
    return found;
  }

  /** Statements inserting one notification and its deliveries (run in one atomic batch). */
  async insertStatements(
    notification: NewNotification,
    deliveries: readonly NewDelivery[],
    nowMs: number,
  ): Promise<D1PreparedStatement[]> {
    const at = new Date(nowMs).toISOString();
    const statements = [
      this.db
        .prepare(
          `INSERT INTO notifications (id, type, source, priority, data, channels, send_at, dedupe_key, request_hash, delivery_ids, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(
          notification.id,
          notification.type,
          notification.source,
          notification.priority,
          JSON.stringify(notification.data),
          notification.channels ? JSON.stringify(notification.channels) : null,
          notification.sendAtMs,
          notification.dedupeKey,
          notification.requestHash,
          JSON.stringify(notification.deliveryIds),
          nowMs,
        ),
    ];
    const sealed = await Promise.all(deliveries.map((d) => this.sealAddress(d.id, d.address)));
    for (const [index, d] of deliveries.entries()) {
      const history: HistoryEntry[] = [{ status: d.status, at, ...(d.reason ? { reason: d.reason } : {}) }];
      statements.push(
        this.db
          .prepare(
            `INSERT INTO deliveries (id, notification_id, user_id, channel, address, status, reason, history, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
          ),
      );
    }
    return statements;
  }

  /** Moves `created` deliveries to `queued` after the queue accepted them. */
  async markQueued(ids: readonly string[], nowMs: number): Promise<void> {
    const entry = JSON.stringify({ status: 'queued', at: new Date(nowMs).toISOString() });
    const statements = chunks(ids, MAX_PARAMS - 3).map((chunk) =>
      this.db
        .prepare(
          `UPDATE deliveries SET status = 'queued', updated_at = ?, history = json_insert(history, '$[#]', json(?))
           WHERE status = 'created' AND id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(nowMs, entry, ...chunk),
    );
    if (statements.length > 0) await this.db.batch(statements);
  }

  /**
   * Statement recording one attempt's outcome. The status moves only along the state machine's
   * edges: the WHERE clause refuses to overwrite a status that is already final for sending, so a
   * late duplicate consumer cannot turn `sent` back into `failed`.
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
        `UPDATE deliveries SET status = ?, reason = ?, provider = coalesce(?, provider),
           provider_message_id = coalesce(?, provider_message_id), template_version = coalesce(?, template_version),
           attempts = attempts + ?, updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,
           history = json_insert(history, '$[#]', json(?))
         WHERE id = ? AND status IN ('created', 'queued', 'deferred')`,
      )
      .bind(
        outcome.status,
        outcome.reason ?? null,
        outcome.provider ?? null,
        outcome.providerMessageId ?? null,
        outcome.templateVersion ?? null,
        outcome.attempted ? 1 : 0,
        nowMs,
        outcome.status,
        nowMs,
        JSON.stringify(entry),
        outcome.deliveryId,
      );
  }

  /**
   * Statement giving a failed delivery fresh attempts (dead-letter replay): back to `created`, so
   * the enqueue that follows moves it to `queued` like any new delivery.
   */
  resetForReplayStatement(id: string, nowMs: number): D1PreparedStatement {
    const entry = JSON.stringify({
      status: 'created',
      at: new Date(nowMs).toISOString(),
      reason: 'replayed from the dead-letter queue',
    });
    return this.db
      .prepare(
        `UPDATE deliveries SET status = 'created', attempts = 0, reason = NULL, updated_at = ?,
           history = json_insert(history, '$[#]', json(?))
         WHERE id = ? AND status = 'failed'`,
      )
      .bind(nowMs, entry, id);
  }

  /**
   * Claims `created` deliveries older than `olderThanMs` within a recent id range for the sweeper:
   * the UPDATE … RETURNING makes the claim atomic, so two sweepers never enqueue one delivery twice.
   */
  async claimStuck(
    fromId: string,
    toId: string,
    olderThanMs: number,
    limit: number,
    nowMs: number,
  ): Promise<{ id: string; channel: Channel }[]> {
    const entry = JSON.stringify({
      status: 'queued',
      at: new Date(nowMs).toISOString(),
      reason: 're-enqueued by the sweeper',
    });
    const { results } = await this.db
      .prepare(
        `UPDATE deliveries SET status = 'queued', updated_at = ?, history = json_insert(history, '$[#]', json(?))
         WHERE id IN (SELECT id FROM deliveries WHERE id >= ? AND id < ? AND status = 'created' AND updated_at < ? LIMIT ?)
           AND status = 'created'
         RETURNING id, channel`,
      )
      .bind(nowMs, entry, fromId, toId, olderThanMs, limit)
      .all<{ id: string; channel: Channel }>();
    return results;
  }

  /** Gives claimed deliveries back when their enqueue failed. */
  async unclaim(ids: readonly string[], nowMs: number): Promise<void> {
    for (const chunk of chunks(ids, MAX_PARAMS - 1)) {
      await this.db
        .prepare(
          `UPDATE deliveries SET status = 'created', updated_at = ? WHERE status = 'queued' AND id IN (${chunk.map(() => '?').join(',')})`,
        )
        .bind(nowMs, ...chunk)
        .run();
    }
  }

  /** One page of deliveries (by id, after `cursor`) whose address needs re-encrypting under the current key. */
  async rotationPage(
    cursor: string,
    limit: number,
  ): Promise<{ statements: D1PreparedStatement[]; unreadable: number; next: string | null }> {
    const cipher = await this.cipher();
    const { results } = await this.db
      .prepare('SELECT id, address FROM deliveries WHERE id > ? ORDER BY id LIMIT ?')
      .bind(cursor, limit)
      .all<{ id: string; address: string | null }>();
    const statements: D1PreparedStatement[] = [];
    let unreadable = 0;
    for (const row of results) {
      if (row.address === null || !cipher.needsRotation(row.address)) continue;
      try {
        const sealed = await this.sealAddress(row.id, await this.openAddress(row));
        statements.push(
          this.db
            .prepare('UPDATE deliveries SET address = ? WHERE id = ? AND address = ?')
            .bind(sealed, row.id, row.address),
        );
      } catch {
        unreadable += 1;
      }
    }
    return { statements, unreadable, next: results.length === limit ? (results.at(-1)?.id ?? null) : null };
  }

  /** Erasure: a user's deliveries keep their ids, statuses and history, never the address. */
  eraseAddressesStatement(userId: string): D1PreparedStatement {
    return this.db
      .prepare('UPDATE deliveries SET address = NULL WHERE user_id = ? AND address IS NOT NULL')
      .bind(userId);
  }

  /** A user's deliveries, newest first (for the data export). */
  async listForUser(userId: string, limit: number): Promise<Delivery[]> {
    const { results } = await this.db
      .prepare('SELECT * FROM deliveries WHERE user_id = ? ORDER BY created_at DESC LIMIT ?')
      .bind(userId, limit)
      .all<DeliveryRow>();
    return Promise.all(results.map(async (row) => toDelivery(row, await this.openAddress(row))));
  }

  /** Notifications by id (for the data export: the template data a user's messages carried). */
  async getNotifications(ids: readonly string[]): Promise<Notification[]> {
    const out: Notification[] = [];
    for (const chunk of chunks([...new Set(ids)], MAX_PARAMS)) {
      const { results } = await this.db
        .prepare(`SELECT * FROM notifications WHERE id IN (${chunk.map(() => '?').join(',')})`)
        .bind(...chunk)
        .all<NotificationRow>();
      out.push(...results.map(toNotification));
    }
    return out;
  }

  /** Lists notifications newest first, filtered through their deliveries. */
  async list(filters: ListFilters): Promise<Notification[]> {
    const where: string[] = [];
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
        `n.id IN (SELECT d.notification_id FROM deliveries d WHERE ${deliveryFilters.join(' AND ')})`,
      );
    }
    if (filters.type !== undefined) {
      where.push('n.type = ?');
      params.push(filters.type);
    }
    if (filters.cursor) {
      where.push('(n.created_at < ? OR (n.created_at = ? AND n.id < ?))');
      params.push(filters.cursor.createdAt, filters.cursor.createdAt, filters.cursor.id);
    }
    const sql = `SELECT n.* FROM notifications n ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY n.created_at DESC, n.id DESC LIMIT ?`;
    const { results } = await this.db
      .prepare(sql)
      .bind(...params, filters.limit)
      .all<NotificationRow>();
    return results.map(toNotification);
  }
}
