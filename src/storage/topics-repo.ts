import { bucketOfKey } from '../domain/shards';
import type { Topic, TopicSend, TopicTarget } from '../domain/topics';
import type { FieldCipher } from '../lib/field-crypto';
import { PerShard } from './per-shard';
import type { Shard, ShardRouter } from './shard-router';

interface TopicRow {
  key: string;
  name: string | null;
  created_at: number;
  updated_at: number;
}

const toTopic = (row: TopicRow): Topic => ({
  key: row.key,
  name: row.name,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
});

/** Topics (the home database): one row each, subscribers aside. */
export class TopicsRepo {
  constructor(private readonly db: D1Database) {}

  /** Creates the topic or renames it (a name left out keeps the one it has). */
  async put(
    key: string,
    name: string | null | undefined,
    nowMs: number,
  ): Promise<{ topic: Topic; created: boolean }> {
    // One transaction: the insert says whether the topic is new; a rename touches only a changed name.
    const [inserted, , read] = await this.db.batch<TopicRow>([
      this.db
        .prepare('INSERT OR IGNORE INTO topics (key, name, created_at, updated_at) VALUES (?, ?, ?, ?)')
        .bind(key, name ?? null, nowMs, nowMs),
      this.db
        .prepare('UPDATE topics SET name = ?, updated_at = ? WHERE key = ? AND ? AND name IS NOT ?')
        .bind(name ?? null, nowMs, key, name === undefined ? 0 : 1, name ?? null),
      this.db.prepare('SELECT * FROM topics WHERE key = ?').bind(key),
    ]);
    const row = read?.results[0];
    if (!row) throw new Error('topic upsert read no row');
    return { topic: toTopic(row), created: (inserted?.meta.changes ?? 0) > 0 };
  }

  async get(key: string): Promise<Topic | null> {
    const row = await this.db.prepare('SELECT * FROM topics WHERE key = ?').bind(key).first<TopicRow>();
    return row ? toTopic(row) : null;
  }

  /** The keys among these that name a topic. */
  async existing(keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const { results } = await this.db
      .prepare('SELECT key FROM topics WHERE key IN (SELECT value FROM json_each(?))')
      .bind(JSON.stringify(keys))
      .all<{ key: string }>();
    return new Set(results.map((r) => r.key));
  }

  /** A page of topics in key order, after `after`. */
  async list(after: string | undefined, limit: number): Promise<Topic[]> {
    const { results } = await this.db
      .prepare('SELECT * FROM topics WHERE key > ? ORDER BY key LIMIT ?')
      .bind(after ?? '', limit)
      .all<TopicRow>();
    return results.map(toTopic);
  }

  async delete(key: string): Promise<boolean> {
    const result = await this.db.prepare('DELETE FROM topics WHERE key = ?').bind(key).run();
    return result.meta.changes > 0;
  }
}

interface TopicSendRow {
  notification_id: string;
  created_at: number;
  request_hash: string;
  type: string;
  source: string | null;
  priority: string;
  data: string;
  channels: string | null;
  send_at: number | null;
  dedupe_key: string | null;
  cancel_key: string | null;
  topics: string;
  skip: string;
  canceled_at: number | null;
  layout: string;
}

/** A topic send's data is sealed like a head row's, bound to the notification's id. */
const sendDataAad = (notificationId: string) => `topic_sends.data:${notificationId}`;

/** Notifications sent to topics (the home database): what their expansion reads. */
export class TopicSendsRepo {
  constructor(
    private readonly db: D1Database,
    private readonly cipher: () => Promise<FieldCipher>,
  ) {}

  async insertStatement(send: TopicSend): Promise<D1PreparedStatement> {
    const data = await (await this.cipher()).encrypt(
      JSON.stringify(send.data),
      sendDataAad(send.notificationId),
    );
    return this.db
      .prepare(
        `INSERT INTO topic_sends (notification_id, created_at, request_hash, type, source, priority, data, channels,
           send_at, dedupe_key, cancel_key, topics, skip, layout)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        send.notificationId,
        send.createdAtMs,
        send.requestHash,
        send.type,
        send.source,
        send.priority,
        data,
        send.channels ? JSON.stringify(send.channels) : null,
        send.sendAtMs,
        send.dedupeKey,
        send.cancelKey,
        JSON.stringify(send.topics),
        JSON.stringify(send.skip),
        send.layout,
      );
  }

  async get(notificationId: string): Promise<TopicSend | null> {
    const [send] = await this.getMany([notificationId]);
    return send ?? null;
  }

  async getMany(ids: readonly string[]): Promise<TopicSend[]> {
    if (ids.length === 0) return [];
    const { results } = await this.db
      .prepare('SELECT * FROM topic_sends WHERE notification_id IN (SELECT value FROM json_each(?))')
      .bind(JSON.stringify(ids))
      .all<TopicSendRow>();
    const cipher = await this.cipher();
    return Promise.all(
      results.map(async (row) => ({
        notificationId: row.notification_id,
        createdAtMs: row.created_at,
        requestHash: row.request_hash,
        type: row.type,
        source: row.source,
        priority: row.priority as TopicSend['priority'],
        data: JSON.parse(await cipher.decrypt(row.data, sendDataAad(row.notification_id))) as Record<
          string,
          unknown
        >,
        channels: row.channels ? (JSON.parse(row.channels) as TopicSend['channels']) : null,
        sendAtMs: row.send_at,
        dedupeKey: row.dedupe_key,
        cancelKey: row.cancel_key,
        topics: JSON.parse(row.topics) as TopicTarget[],
        skip: JSON.parse(row.skip) as string[],
        canceledAtMs: row.canceled_at,
        layout: row.layout,
      })),
    );
  }

  /** Whether a send was canceled (read again after a page is written). */
  async isCanceled(notificationId: string): Promise<boolean> {
    const row = await this.db
      .prepare('SELECT canceled_at FROM topic_sends WHERE notification_id = ?')
      .bind(notificationId)
      .first<{ canceled_at: number | null }>();
    return row?.canceled_at != null;
  }

  /** Stops the expansion of these sends (a cancellation): true for each one that was running. */
  async cancel(ids: readonly string[], nowMs: number): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db
      .prepare(
        'UPDATE topic_sends SET canceled_at = ? WHERE canceled_at IS NULL AND notification_id IN (SELECT value FROM json_each(?))',
      )
      .bind(nowMs, JSON.stringify(ids))
      .run();
    return result.meta.changes;
  }

  /**
   * Moves a send to a new database layout, once: true for the one caller that did it (that caller
   * restarts the expansion; the others stop).
   */
  async relayout(notificationId: string, from: string, to: string): Promise<boolean> {
    const result = await this.db
      .prepare('UPDATE topic_sends SET layout = ? WHERE notification_id = ? AND layout = ?')
      .bind(to, notificationId, from)
      .run();
    return result.meta.changes > 0;
  }

  /** Removes these sends (a commit that failed part-way is undone). */
  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .prepare('DELETE FROM topic_sends WHERE notification_id IN (SELECT value FROM json_each(?))')
      .bind(JSON.stringify(ids))
      .run();
  }

  /** Removes sends accepted before `beforeMs` (retention), at most `limit`; how many went. */
  async deleteOlderThan(beforeMs: number, limit: number): Promise<number> {
    const result = await this.db
      .prepare(
        `DELETE FROM topic_sends WHERE notification_id IN
           (SELECT notification_id FROM topic_sends WHERE created_at < ? LIMIT ?)`,
      )
      .bind(beforeMs, limit)
      .run();
    return result.meta.changes;
  }
}

/** The primary key of a subscription: the topic's key, a space, the user id (see 0016_topics.sql). */
const subKey = (topic: string, userId: string) => `${topic} ${userId}`;
/** The range of a topic's subscriptions after `after` (a user id), in user-id order. */
const rangeOf = (topic: string, after?: string): [string, string] => [
  subKey(topic, after ?? ''),
  `${topic}!`,
];

export interface Subscription {
  userId: string;
  createdAtMs: number;
}

/** Subscriptions in one database (each in its user's). */
export class TopicSubscriptionsRepo {
  constructor(private readonly db: D1Database) {}

  /** Subscribes users (once each: a repeat changes nothing); how many were new. */
  async subscribe(topic: string, userIds: readonly string[], nowMs: number): Promise<number> {
    const rows = userIds.map((u) => ({ k: subKey(topic, u), u, b: bucketOfKey(u) }));
    const result = await this.db
      .prepare(
        `INSERT OR IGNORE INTO topic_subscriptions (sub_key, topic_key, user_id, bucket, created_at)
         SELECT json_extract(value, '$.k'), ?, json_extract(value, '$.u'), json_extract(value, '$.b'), ?
         FROM json_each(?)`,
      )
      .bind(topic, nowMs, JSON.stringify(rows))
      .run();
    return result.meta.changes;
  }

  async unsubscribe(topic: string, userIds: readonly string[]): Promise<number> {
    const result = await this.db
      .prepare('DELETE FROM topic_subscriptions WHERE sub_key IN (SELECT value FROM json_each(?))')
      .bind(JSON.stringify(userIds.map((u) => subKey(topic, u))))
      .run();
    return result.meta.changes;
  }

  /** The next `limit` subscribers of a topic after `after`, in user-id order: one key range. */
  async page(topic: string, after: string | undefined, limit: number): Promise<Subscription[]> {
    const [from, to] = rangeOf(topic, after);
    const { results } = await this.db
      .prepare(
        `SELECT user_id, created_at FROM topic_subscriptions WHERE sub_key > ? AND sub_key < ?
         ORDER BY sub_key LIMIT ?`,
      )
      .bind(from, to, limit)
      .all<{ user_id: string; created_at: number }>();
    return results.map((r) => ({ userId: r.user_id, createdAtMs: r.created_at }));
  }

  /** Subscribers of a topic here; `buckets` left out (another database's copy during a move). */
  async count(topic: string, foreign: readonly number[]): Promise<number> {
    const [from, to] = rangeOf(topic);
    const row = await this.db
      .prepare(
        `SELECT count(*) AS n FROM topic_subscriptions WHERE sub_key > ? AND sub_key < ?
           AND bucket NOT IN (SELECT value FROM json_each(?))`,
      )
      .bind(from, to, JSON.stringify(foreign))
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /** Removes up to `limit` subscriptions of a topic; how many went. */
  async removeTopicPage(topic: string, limit: number): Promise<number> {
    const [from, to] = rangeOf(topic);
    const result = await this.db
      .prepare(
        `DELETE FROM topic_subscriptions WHERE sub_key IN
           (SELECT sub_key FROM topic_subscriptions WHERE sub_key > ? AND sub_key < ? LIMIT ?)`,
      )
      .bind(from, to, limit)
      .run();
    return result.meta.changes;
  }

  /** Erasure: the user leaves every topic. */
  removeUserStatement(userId: string): D1PreparedStatement {
    return this.db.prepare('DELETE FROM topic_subscriptions WHERE user_id = ?').bind(userId);
  }

  /** The topics a user follows (the export). */
  async topicsOf(userId: string): Promise<string[]> {
    const { results } = await this.db
      .prepare('SELECT topic_key FROM topic_subscriptions WHERE user_id = ? ORDER BY topic_key')
      .bind(userId)
      .all<{ topic_key: string }>();
    return results.map((r) => r.topic_key);
  }
}

/** Subscriptions over every database: writes by user, reads of a topic fanned out and merged. */
export class ShardedTopicSubscriptions extends PerShard<TopicSubscriptionsRepo> {
  constructor(router: ShardRouter) {
    super(router, (db) => new TopicSubscriptionsRepo(db));
  }

  async subscribe(topic: string, userIds: readonly string[], nowMs: number): Promise<number> {
    const added = await Promise.all(this.byUser(userIds, (repo, ids) => repo.subscribe(topic, ids, nowMs)));
    return added.reduce((a, b) => a + b, 0);
  }

  async unsubscribe(topic: string, userIds: readonly string[]): Promise<number> {
    const removed = await Promise.all(this.byUser(userIds, (repo, ids) => repo.unsubscribe(topic, ids)));
    return removed.reduce((a, b) => a + b, 0);
  }

  /** A page of a topic's subscribers over every database, merged in user-id order. */
  async page(topic: string, after: string | undefined, limit: number): Promise<Subscription[]> {
    const pages = await Promise.all(
      this.router.shards.map(async (shard) =>
        (await this.on(shard).page(topic, after, limit)).filter(
          (s) => this.router.forUser(s.userId) === shard,
        ),
      ),
    );
    return pages
      .flat()
      .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
      .slice(0, limit);
  }

  /** One database's page (the expansion works database by database). */
  pageIn(shard: Shard, topic: string, after: string | undefined, limit: number): Promise<Subscription[]> {
    return this.on(shard).page(topic, after, limit);
  }

  async count(topic: string): Promise<number> {
    const counts = await Promise.all(
      this.router.shards.map((shard) => this.on(shard).count(topic, this.router.foreignBuckets(shard))),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Removes every subscription of a topic, page by page in each database. */
  async removeTopic(topic: string, pageSize: number): Promise<void> {
    await Promise.all(
      this.router.databases.map(async (shard) => {
        while ((await this.on(shard).removeTopicPage(topic, pageSize)) >= pageSize);
      }),
    );
  }

  /** Erasure: statements removing the user from every topic, wherever their rows may be. */
  removeUserStatements(userId: string): D1PreparedStatement[] {
    return this.router.databases.map((shard) => this.on(shard).removeUserStatement(userId));
  }

  topicsOf(userId: string): Promise<string[]> {
    return this.ofUser(userId).topicsOf(userId);
  }
}
