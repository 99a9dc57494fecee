import type { z } from '@hono/zod-openapi';
import type { NotificationSchema } from '../../src/api/shared/schemas';
import type { Env } from '../../src/config/env';
import type { Address } from '../../src/domain/address';
import type { Channel } from '../../src/domain/channels';
import type { Delivery } from '../../src/domain/delivery';
import { bucketOfKey } from '../../src/domain/shards';
import type { DeliveryStatus } from '../../src/domain/status';
import { newId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import { api, json, testEnv, uniqueUser } from './api';
import { commit, dbOfDelivery, router } from './shards';

const repo = () => createServices(testEnv).deliveries;

/**
 * A delivery a provider accepted: written `created` (in its user's shard, its id naming the user's
 * bucket), then recorded `sent`. Returns its id.
 */
export async function sentDelivery(
  address: Address = { channel: 'email', email: 'ada@example.com' },
  provider = 'sandbox',
  userId = uniqueUser(),
): Promise<string> {
  const now = Date.now();
  const id = newId('dlv', now, bucketOfKey(userId));
  const notificationId = `ntf_${id.slice(4)}`;
  await commit(
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
        cancelKey: null,
        requestHash: 'test',
        producerKey: false,
      },
      [{ id, notificationId, userId, channel: address.channel, address, status: 'created' }],
      now,
    ),
  );
  await commit(
    repo().outcomeStatements([{ deliveryId: id, status: 'sent', provider, attempted: true }], now),
  );
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
  /** The bucket their ids name (default 0): they are written to the shard it maps to. */
  bucket?: number;
}

/**
 * Writes `count` deliveries of one notification straight into D1 in one statement, with ids in
 * order from one of `atMs`'s ids, and returns the ids: rows for the sweeper and the reaper to
 * find, thousands at a time. The ids name `bucket`, and the rows go to the shard it maps to. Pick
 * an `atMs` no other test uses (a moment far in the future works).
 */
export async function insertDeliveries(options: BulkDeliveries): Promise<string[]> {
  const bucket = options.bucket ?? 0;
  // The instant's id prefix, 8 random characters (the first two name the bucket, the rest keep
  // rows of one instant from colliding), a counter.
  const prefix = newId('dlv', options.atMs, bucket).slice(0, 22);
  const status = options.status ?? 'created';
  const history = JSON.stringify([{ status, at: new Date(options.atMs).toISOString() }]);
  await router()
    .forBucket(bucket)
    .db.prepare(
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

/**
 * The status of each of these deliveries, by id, read in the shard each id's bucket maps to (ids
 * without a row there are absent).
 */
export async function statusesOf(ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [shard, group] of router().groupIds(ids)) {
    for (let i = 0; i < group.length; i += 90) {
      const chunk = group.slice(i, i + 90);
      const { results } = await shard.db
        .prepare(`SELECT id, status FROM deliveries WHERE id IN (${chunk.map(() => '?').join(',')})`)
        .bind(...chunk)
        .all<{ id: string; status: string }>();
      for (const row of results) out.set(row.id, row.status);
    }
  }
  return out;
}

/** A delivery's row as D1 holds it, read in its shard (null when there is none). */
export async function deliveryRow<T = Record<string, unknown>>(id: string): Promise<T | null> {
  return dbOfDelivery(id).prepare('SELECT * FROM deliveries WHERE id = ?').bind(id).first<T>();
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
