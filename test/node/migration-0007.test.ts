import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';

/**
 * Migration 0007 moves notifications onto their delivery rows. Applied here to a database holding
 * rows written by the schema before it (SQLite in Node, the same engine D1 runs), it must leave
 * every old notification findable the way the repository looks for it.
 */
const dir = join(import.meta.dirname, '../../migrations');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.sql'))
  .sort();

function migrate(db: DatabaseSync, which: (file: string) => boolean) {
  for (const file of files.filter(which)) db.exec(readFileSync(join(dir, file), 'utf8'));
}

describe('migration 0007 (one row per delivery)', () => {
  it('keeps notifications written before it readable: fields on their rows, keys, head ids', () => {
    const db = new DatabaseSync(':memory:');
    migrate(db, (f) => f < '0007');
    const at = 1_764_300_000_000;
    const notification = db.prepare(
      `INSERT INTO notifications (id, type, source, priority, data, channels, send_at, dedupe_key, request_hash, delivery_ids, created_at)
       VALUES (?, 'order_shipped', 'shop', 'high', '{"order":"A-1"}', '["email","sms"]', NULL, 'k1', 'hash', ?, ?)`,
    );
    const delivery = db.prepare(
      `INSERT INTO deliveries (id, notification_id, user_id, channel, status, history, created_at, updated_at)
       VALUES (?, ?, 'u1', ?, 'sent', '[]', ?, ?)`,
    );
    // Old delivery ids were independent random ids of one millisecond: no sequence.
    notification.run(
      'order-1',
      JSON.stringify(['dlv_01kb0000007zzzzzzzzzzzzzzz', 'dlv_01kb00000011111111111111111']),
      at,
    );
    delivery.run('dlv_01kb0000007zzzzzzzzzzzzzzz', 'order-1', 'email', at, at);
    delivery.run('dlv_01kb00000011111111111111111', 'order-1', 'sms', at, at);

    migrate(db, (f) => f.startsWith('0007'));

    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    expect(tables).not.toContain('notifications');
    expect(tables).not.toContain('deliveries_by_user');
    expect(db.prepare('SELECT key, created_at, head_id FROM notification_keys').all()).toEqual([
      { key: 'order-1', created_at: at, head_id: null },
    ]);
    const rows = db
      .prepare(
        `SELECT id, type, priority, dedupe_key, data, source, channels, request_hash, head_id
         FROM deliveries WHERE notification_id = 'order-1' ORDER BY id`,
      )
      .all();
    expect(rows).toEqual([
      {
        id: 'dlv_01kb00000011111111111111111',
        type: 'order_shipped',
        priority: 'high',
        dedupe_key: 'k1',
        data: null,
        source: null,
        channels: null,
        request_hash: null,
        head_id: 'dlv_01kb0000007zzzzzzzzzzzzzzz',
      },
      {
        id: 'dlv_01kb0000007zzzzzzzzzzzzzzz',
        type: 'order_shipped',
        priority: 'high',
        dedupe_key: 'k1',
        data: '{"order":"A-1"}',
        source: 'shop',
        channels: '["email","sms"]',
        request_hash: 'hash',
        head_id: 'dlv_01kb0000007zzzzzzzzzzzzzzz',
      },
    ]);
  });
});
