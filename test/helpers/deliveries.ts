import type { z } from '@hono/zod-openapi';
import type { NotificationSchema } from '../../src/api/shared/schemas';
import type { Env } from '../../src/config/env';
import type { Address } from '../../src/domain/address';
import type { Channel } from '../../src/domain/channels';
import type { Delivery } from '../../src/domain/delivery';
import type { DeliveryStatus } from '../../src/domain/status';
import { newId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import { api, json, testEnv, uniqueUser } from './api';

const repo = () => createServices(testEnv).deliveries;

/** A delivery a provider accepted: written `created`, then recorded `sent`. Returns its id. */
export async function sentDelivery(
  address: Address = { channel: 'email', email: 'ada@example.com' },
  provider = 'sandbox',
): Promise<string> {
  const now = Date.now();
  const id = newId('dlv', now);
  const notificationId = `ntf_${id.slice(4)}`;
  await testEnv.DB.batch(
    await repo().insertStatements(
      {
        id: notificationId,
        type: 'payment_reminder',
        source: null,
        priority: 'normal',
        data: {},
        channels: null,
        sendAtMs: null,
        dedupeKey: null,
        requestHash: 'test',
        producerKey: false,
      },
      [{ id, notificationId, userId: uniqueUser(), channel: address.channel, address, status: 'created' }],
      now,
    ),
  );
  await repo().outcomeStatement({ deliveryId: id, status: 'sent', provider, attempted: true }, now).run();
  return id;
}

/** One delivery as stored. */
export async function delivery(id: string): Promise<Delivery> {
  const [found] = await repo().getDeliveries([id]);
  if (!found) throw new Error(`no delivery ${id}`);
  return found;
}

/** A notification as GET /v1/notifications/{id} shows it, and one of its deliveries. */
export type NotificationView = z.infer<typeof NotificationSchema>;
export type DeliveryView = NotificationView['deliveries'][number];

/** The deliveries of a notification, as the API shows them, in planned order. */
export async function readDeliveries(notificationId: string): Promise<DeliveryView[]> {
  const res = await api('GET', `/v1/notifications/${notificationId}`);
  if (res.status !== 200) throw new Error(`GET /v1/notifications/${notificationId}: ${res.status}`);
  return (await json<NotificationView>(res)).deliveries;
}

/** One delivery of a notification (the first by default), as the API shows it. */
export async function readDelivery(notificationId: string, index = 0): Promise<DeliveryView> {
  const found = (await readDeliveries(notificationId))[index];
  if (!found) throw new Error(`no delivery ${index} in ${notificationId}`);
  return found;
}

/** A message the sandbox provider captured, as GET /v1/outbox lists it. */
export interface OutboxEntry {
  deliveryId: string;
  notificationId: string;
  userId: string | null;
  channel: string;
  message: {
    subject?: string;
    text?: string;
    html?: string;
    title?: string;
    body?: string;
    headers?: Record<string, string>;
  };
}

/** The sandbox outbox filtered by `query` (userId, notificationId, channel), newest first. */
export async function readOutbox(query: Record<string, string>, env?: Env): Promise<OutboxEntry[]> {
  const res = await api('GET', `/v1/outbox?${new URLSearchParams(query)}`, undefined, { env });
  if (res.status !== 200) throw new Error(`GET /v1/outbox: ${res.status}`);
  return (await json<{ data: OutboxEntry[] }>(res)).data;
}

/** What `insertDeliveries` writes. */
export interface BulkDeliveries {
  count: number;
  /** When they were created: their ids are this instant's, counted up from 0 (one primary-key range). */
  atMs: number;
  channel?: Channel;
  status?: DeliveryStatus;
  /** When their row was last written (default: `atMs`). */
  updatedAtMs?: number;
  sendAtMs?: number | null;
}

/**
 * Writes `count` deliveries of one notification straight into D1 in one statement, with ids in
 * order from one of `atMs`'s ids, and returns the ids: rows for the sweeper and the reaper to
 * find, thousands at a time. Pick an `atMs` no other test uses (a moment far in the future works).
 */
export async function insertDeliveries(options: BulkDeliveries): Promise<string[]> {
  // The instant's id prefix, 8 random characters (so rows of one instant never collide), a counter.
  const prefix = newId('dlv', options.atMs).slice(0, 22);
  const status = options.status ?? 'created';
  const history = JSON.stringify([{ status, at: new Date(options.atMs).toISOString() }]);
  await testEnv.DB.prepare(
    `WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1)
     INSERT INTO deliveries (id, notification_id, channel, status, history, created_at, updated_at, type, priority, send_at, head_id)
     SELECT ?2 || printf('%08d', n), 'ntf_' || substr(?2, 5) || '00000000', ?3, ?4, ?5, ?6, ?7, 'payment_reminder',
            'normal', ?8, ?2 || '00000000'
     FROM seq`,
  )
    .bind(
      options.count,
      prefix,
      options.channel ?? 'email',
      status,
      history,
      options.atMs,
      options.updatedAtMs ?? options.atMs,
      options.sendAtMs ?? null,
    )
    .run();
  return Array.from({ length: options.count }, (_, n) => `${prefix}${String(n).padStart(8, '0')}`);
}

/** The status of each of these deliveries, by id (ids without a row are absent). */
export async function statusesOf(ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const { results } = await testEnv.DB.prepare(
      `SELECT id, status FROM deliveries WHERE id IN (${chunk.map(() => '?').join(',')})`,
    )
      .bind(...chunk)
      .all<{ id: string; status: string }>();
    for (const row of results) out.set(row.id, row.status);
  }
  return out;
}

/**
 * A D1 binding that fails like an outage: every `prepare`, `batch` and `exec` throws. With `only`,
 * just the statements whose SQL matches it fail (at `prepare`), and the rest reach the real `db`.
 */
export function brokenD1(db: D1Database, only?: RegExp): D1Database {
  const outage = () => new Error('D1_ERROR: Network connection lost.');
  return new Proxy(db, {
    get(target, property) {
      if (property === 'prepare') {
        return (sql: string) => {
          if (!only || only.test(sql)) throw outage();
          return target.prepare(sql);
        };
      }
      if (!only && (property === 'batch' || property === 'exec' || property === 'dump')) {
        return () => Promise.reject(outage());
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
