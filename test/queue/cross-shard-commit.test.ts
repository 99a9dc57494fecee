import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Env, parseEnv } from '../../src/config/env';
import { createServices } from '../../src/services/container';
import { api, json, testEnv } from '../helpers/api';
import { envWithCapturedQueues } from '../helpers/queues';
import { userInShard } from '../helpers/shards';

/**
 * A notification to users in two databases is written as one batch per database. When the second
 * database refuses its batch after the first took its part, the part is removed again: the
 * producer's error means nothing was accepted, and its retry is accepted whole.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

/** A binding whose batches fail while `down.value` is true. */
function failing(db: D1Database, down: { value: boolean }): D1Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === 'batch' && down.value)
        return async () => Promise.reject(new Error('D1_ERROR: shard down'));
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function rowsOf(env: Env, notificationId: string): Promise<number> {
  let n = 0;
  for (const shard of createServices(parseEnv(env)).router.databases) {
    const row = await shard.db
      .prepare('SELECT count(*) AS n FROM deliveries WHERE notification_id = ?')
      .bind(notificationId)
      .first<{ n: number }>();
    n += row?.n ?? 0;
  }
  return n;
}

describe('a notification across databases', () => {
  it('is written whole or not at all when one database fails', async () => {
    const down = { value: true };
    const { env } = envWithCapturedQueues({
      DB_1: failing((testEnv as unknown as Record<string, D1Database>).DB_1 as D1Database, down),
    });
    const [first, second] = [userInShard(0), userInShard(1)];
    const body = {
      id: `cross-${Date.now()}`,
      type: 'security_alert',
      recipients: [first, second].map((userId) => ({ userId, email: `${userId}@example.com` })),
    };
    const refused = await api('POST', '/v1/notifications', body, { env });
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(await rowsOf(env, body.id)).toBe(0);

    down.value = false;
    const accepted = await api('POST', '/v1/notifications', body, { env });
    expect(accepted.status).toBe(202);
    const answer = await json<{ replayed?: boolean; deliveries: unknown[] }>(accepted);
    expect(answer.replayed).toBeUndefined();
    expect(answer.deliveries).toHaveLength(2);
    expect(await rowsOf(env, body.id)).toBe(2);
  });
});
