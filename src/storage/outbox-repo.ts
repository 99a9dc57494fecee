import type { Address } from '../domain/address';
import { type Channel, IDEMPOTENT_CHANNELS } from '../domain/channels';
import type { RenderedMessage } from '../domain/message';
import { chunk } from '../lib/collections';

export interface OutboxEntry {
  id: number;
  deliveryId: string;
  notificationId: string;
  userId: string | null;
  channel: Channel;
  address: Address;
  message: RenderedMessage;
  createdAt: string;
  /**
   * A repeat of a delivery already captured, on a channel whose real providers take an
   * idempotency key: the same key went out twice, and a real provider would have dropped this one.
   */
  idempotentRepeat: boolean;
}

interface OutboxRow {
  id: number;
  delivery_id: string;
  notification_id: string;
  user_id: string | null;
  channel: Channel;
  address: string;
  message: string;
  created_at: number;
  idempotent_repeat: number;
}

/** The sandbox provider's record of every message it would have sent. */
export class OutboxRepo {
  constructor(private readonly db: D1Database) {}

  /**
   * Records what the sandbox captured: every send is kept, so a duplicate can always be seen. On a
   * channel whose real providers take an idempotency key (the delivery id), a send of a delivery
   * already captured is marked `idempotent_repeat` (found through `outbox_by_delivery`): the
   * provider would have dropped it, so it was sent twice but delivered once.
   */
  insertStatement(
    entry: Omit<OutboxEntry, 'id' | 'createdAt' | 'idempotentRepeat'>,
    nowMs: number,
  ): D1PreparedStatement {
    const keyed = IDEMPOTENT_CHANNELS.has(entry.channel);
    return this.db
      .prepare(
        `INSERT INTO outbox
           (delivery_id, notification_id, user_id, channel, address, message, created_at, idempotent_repeat)
         VALUES (?, ?, ?, ?, ?, ?, ?, ? AND EXISTS (SELECT 1 FROM outbox WHERE delivery_id = ?))`,
      )
      .bind(
        entry.deliveryId,
        entry.notificationId,
        entry.userId,
        entry.channel,
        JSON.stringify(entry.address),
        JSON.stringify(entry.message),
        nowMs,
        keyed ? 1 : 0,
        entry.deliveryId,
      );
  }

  /** Statements removing what the sandbox captured for these deliveries (retention). */
  deleteForDeliveriesStatements(ids: readonly string[]): D1PreparedStatement[] {
    return chunk([...ids], 100).map((part) =>
      this.db
        .prepare(`DELETE FROM outbox WHERE delivery_id IN (${part.map(() => '?').join(',')})`)
        .bind(...part),
    );
  }

  deleteForUserStatement(userId: string): D1PreparedStatement {
    return this.db.prepare('DELETE FROM outbox WHERE user_id = ?').bind(userId);
  }

  async list(filters: {
    userId?: string;
    channel?: Channel;
    notificationId?: string;
    limit: number;
  }): Promise<OutboxEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filters.userId !== undefined) {
      where.push('user_id = ?');
      params.push(filters.userId);
    }
    if (filters.channel !== undefined) {
      where.push('channel = ?');
      params.push(filters.channel);
    }
    if (filters.notificationId !== undefined) {
      where.push('notification_id = ?');
      params.push(filters.notificationId);
    }
    const { results } = await this.db
      .prepare(
        `SELECT * FROM outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      )
      .bind(...params, filters.limit)
      .all<OutboxRow>();
    return results.map((row) => ({
      id: row.id,
      deliveryId: row.delivery_id,
      notificationId: row.notification_id,
      userId: row.user_id,
      channel: row.channel,
      address: JSON.parse(row.address) as Address,
      message: JSON.parse(row.message) as RenderedMessage,
      createdAt: new Date(row.created_at).toISOString(),
      idempotentRepeat: row.idempotent_repeat === 1,
    }));
  }
}
