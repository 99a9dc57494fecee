import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Env } from '../../src/config/env';
import { bucketOfId } from '../../src/lib/ids';
import { MISSING_ROW_GRACE_MS } from '../../src/services/delivery/load';
import { api, json, uniqueUser } from '../helpers/api';
import {
  type Accepted,
  type CapturedEnv,
  consumeEnqueued,
  enqueued,
  envWithCapturedQueues,
  runConsumer,
  sendNotification,
} from '../helpers/queues';
import { allShards, countAll, dbOfDelivery, everyDatabase, homeDb, router } from '../helpers/shards';

/**
 * Ingest hands deliveries to their queues first and writes their rows (already `queued`) after:
 * one row written per delivery. These tests pin that order and what it implies for the consumer.
 */

afterEach(() => vi.restoreAllMocks());

/** One email security alert to `email`. */
const alertTo = (email: string) => ({ type: 'security_alert', recipients: [{ email }] });

interface Row {
  id: string;
  status: string;
  history: string;
  head_id: string;
  request_hash: string | null;
}

/**
 * A notification's delivery rows, in the order planned (the order `accepted` lists them). Each is
 * in the shard its id names and nowhere else (none in the home database).
 */
async function rowsOf(accepted: Pick<Accepted, 'id' | 'deliveries'>): Promise<Row[]> {
  const planned = accepted.deliveries.map((d) => d.id);
  const found = new Map<string, Row>();
  for (const shard of allShards()) {
    for (const row of await partIn(shard.db, accepted.id)) {
      expect(router().forId(row.id).name, row.id).toBe(shard.name);
      found.set(row.id, row);
    }
  }
  const home = await homeDb()
    .prepare('SELECT count(*) AS n FROM deliveries WHERE notification_id = ?')
    .bind(accepted.id)
    .first<{ n: number }>();
  expect(home?.n).toBe(0);
  expect([...found.keys()].sort()).toEqual([...planned].sort());
  return planned.map((id) => found.get(id) as Row);
}

/** A notification's rows in one database, in primary-key order. */
async function partIn(db: D1Database, notificationId: string): Promise<Row[]> {
  const { results } = await db
    .prepare(
      'SELECT id, status, history, head_id, request_hash FROM deliveries WHERE notification_id = ? ORDER BY id',
    )
    .bind(notificationId)
    .all<Row>();
  return results;
}

/** The home database's key row of a producer id. */
const keyRow = (key: string) =>
  homeDb().prepare('SELECT key, head_id FROM notification_keys WHERE key = ?').bind(key).first();

/** The env whose D1 `batch` (the ingest's write) fails in every database, while reads still work. */
function failingWrites(captured: CapturedEnv): Env {
  const failing = (db: D1Database) =>
    new Proxy(db, {
      get(target, property, receiver) {
        if (property === 'batch')
          return async () => Promise.reject(new Error('D1_ERROR: storage unavailable'));
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return { ...captured.env, ...everyDatabase(failing) } as Env;
}

describe('ingest: queue first, then one row per delivery', () => {
  it('writes each delivery once, already queued, in the order planned, the first carrying the notification', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }, { email: 'b@example.com', phone: '+14155550100' }],
      channels: ['email', 'sms'],
    });
    // Each row once, in its shard (see rowsOf); each bucket's part is one primary-key range in
    // the order planned, and a database holds its buckets' parts.
    const rows = await rowsOf(accepted);
    expect(rows.map((r) => r.id)).toEqual(accepted.deliveries.map((d) => d.id));
    for (const shard of allShards()) {
      expect(
        (await partIn(shard.db, accepted.id)).map((r) => r.id),
        shard.name,
      ).toEqual(
        rows
          .map((r) => r.id)
          .filter((id) => router().forId(id) === shard)
          .sort(),
      );
    }
    // The first recipient has no phone: that delivery is planned `skipped` and never enqueued.
    expect(rows.map((r) => r.status)).toEqual(['queued', 'skipped', 'queued', 'queued']);
    expect(JSON.parse(rows[0]?.history ?? '[]').map((h: { status: string }) => h.status)).toEqual([
      'created',
      'queued',
    ]);
    // Each bucket's part has its head: its first delivery in the order planned, which carries
    // the notification (the request hash; `part:` on every head but the notification's first).
    const headOf = (id: string) => rows.find((r) => bucketOfId(r.id) === bucketOfId(id))?.id;
    expect(rows.map((r) => r.head_id)).toEqual(rows.map((r) => headOf(r.id)));
    expect(rows[0]?.head_id).toBe(rows[0]?.id);
    expect(rows.map((r) => r.request_hash !== null)).toEqual(rows.map((r) => r.head_id === r.id));
    expect(rows[0]?.request_hash).not.toMatch(/^part:/);
    for (const row of rows.slice(1)) if (row.request_hash) expect(row.request_hash).toMatch(/^part:/);
    // A generated notification id is its head's id under `ntf_`: no key row is written for it.
    expect(accepted.id).toBe(`ntf_${rows[0]?.id.slice(4)}`);
    expect(await keyRow(accepted.id)).toBeNull();
    expect(captured.queues.email.ids()).toEqual([rows[0]?.id, rows[2]?.id]);
  });

  it('writes one key row for a producer id, which finds the notification again', async () => {
    const captured = envWithCapturedQueues();
    const id = `order-${uniqueUser()}`;
    const body = { id, ...alertTo('a@example.com') };
    const first = await sendNotification(captured, body);
    const rows = await rowsOf(first);
    expect(await keyRow(id)).toEqual({ key: id, head_id: rows[0]?.id });
    const again = await api('POST', '/v1/notifications', body, { env: captured.env });
    expect(again.status).toBe(202);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect((await json<Accepted>(again)).deliveries).toEqual(first.deliveries);
    expect(captured.queues.email.sent).toHaveLength(1);
  });

  it('insert and outcome write exactly the rows the budget allows, as D1 counts them', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, alertTo('a@example.com'));
    const written: number[] = [];
    // Every database metered: the delivery's shard, and the home database (which must see none).
    const metered = (db: D1Database) =>
      new Proxy(db, {
        get(target, property, receiver) {
          if (property === 'batch')
            return async (statements: D1PreparedStatement[]) => {
              const results = await target.batch(statements);
              written.push(...results.map((r) => r.meta.rows_written));
              return results;
            };
          const value = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    await runConsumer(
      { ...captured.env, ...everyDatabase(metered), EMAIL_PROVIDERS: 'sandbox' } as Env,
      'herald-email',
      [enqueued(captured, 'email')],
    );
    const [row] = await rowsOf(accepted);
    expect(row?.status).toBe('sent');
    // The consumer's writes: the sandbox's outbox insert (row, sequence and two indexes), then the
    // delivery's outcome, recorded on its own as soon as the provider answered, which must stay
    // 1 row (no index on deliveries), after the SELECT reading what it changes (nothing written).
    // Then the batch's commit: the answers' counts, one metric_counters row for the type (the
    // price of an exact herald_deliveries_total, shared by every answer of the batch).
    expect(written).toEqual([4, 0, 1, 1]);
  });

  it('when the row write fails after the queue send, the producer gets a 5xx and nothing is sent', async () => {
    const captured = envWithCapturedQueues();
    const res = await api('POST', '/v1/notifications', alertTo('lost@example.com'), {
      env: failingWrites(captured),
    });
    expect(res.status).toBeGreaterThanOrEqual(500);
    // The queue send comes first.
    const message = enqueued(captured, 'email');
    const [id = ''] = message.deliveryIds;
    expect(await countAll('SELECT count(*) AS n FROM deliveries WHERE id = ?', id)).toBe(0);

    // Within the grace period the consumer waits for the row: a new message, the same `at`.
    const early = await consumeEnqueued(captured, 'email');
    expect(early.result.explicitAcks).toEqual(early.messageIds);
    const resent = captured.queues.email.sent.at(-1);
    expect(resent?.body).toMatchObject({ deliveryIds: [id], at: message.at });
    expect(resent?.delaySeconds).toBeGreaterThan(0);

    // After it, the message is dropped: the producer was told the notification was not accepted.
    const before = captured.queues.email.sent.length;
    const late = await runConsumer(captured.env, 'herald-email', [
      { ...message, at: Date.now() - MISSING_ROW_GRACE_MS - 1 },
    ]);
    expect(late.result.explicitAcks).toEqual(late.messageIds);
    expect(captured.queues.email.sent).toHaveLength(before);
    expect(await countAll('SELECT count(*) AS n FROM outbox WHERE delivery_id = ?', id)).toBe(0);
  });

  it('a consumer that gets the message before the rows exist delivers it once they do', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, alertTo('race@example.com'));
    const [row] = await rowsOf(accepted);
    const shard = dbOfDelivery(row?.id ?? '');
    // Take the row away as if the ingest's write had not committed yet, then put it back.
    const saved = await shard.prepare('SELECT * FROM deliveries WHERE id = ?').bind(row?.id).first();
    await shard.prepare('DELETE FROM deliveries WHERE id = ?').bind(row?.id).run();
    await consumeEnqueued(captured, 'email');
    // The consumer waited: it sent the message again.
    expect(captured.queues.email.sent).toHaveLength(2);
    const columns = Object.keys(saved ?? {});
    await shard
      .prepare(`INSERT INTO deliveries (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
      .bind(...columns.map((c) => (saved as Record<string, unknown>)[c]))
      .run();
    await consumeEnqueued(captured, 'email', { index: 1 });
    expect((await rowsOf(accepted))[0]?.status).toBe('sent');
  });

  it('a queue that refuses leaves its deliveries created for the sweeper, the others queued', async () => {
    const captured = envWithCapturedQueues();
    captured.queues.sms.fail = true;
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com', phone: '+14155550100' }],
      channels: ['email', 'sms'],
    });
    expect(accepted.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['email', 'queued'],
      ['sms', 'created'],
    ]);
    expect((await rowsOf(accepted)).map((r) => r.status)).toEqual(['queued', 'created']);
  });
});
