import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { gunzipNdjson } from '../../src/storage/archive-store';
import { api, json, testEnv } from '../helpers/api';
import { insertDeliveries, statusesOf } from '../helpers/deliveries';
import { atTime, envWithCapturedQueues, runCron, sendNotification } from '../helpers/queues';
import { allShards, bucketInShard, dbOfDelivery, router } from '../helpers/shards';

type RetentionBody = { before: string; archived: number; removed: number; objects: string[]; more: boolean };
type ErrorBody = { error: { code: string; message: string } };

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** The database `insertDeliveries` writes to by default (bucket 0), and the other shard. */
const FIRST = router().forBucket(0).name;
const OTHER = allShards()[1]?.name ?? '';

async function runRetention(before: number, env?: Env) {
  return api(
    'POST',
    '/v1/admin/retention/run',
    { before: new Date(before).toISOString() },
    env ? { env } : {},
  );
}

describe('retention with an archive', () => {
  it('archives, then removes; the archive objects decode to the removed rows, still encrypted', async () => {
    const at = Date.UTC(2001, 0, 1, 10, 30);
    const ids = await insertDeliveries({ count: 3, atMs: at, status: 'sent' });
    await dbOfDelivery(ids[0] ?? '')
      .prepare("UPDATE deliveries SET address = 'enc:v1:test1:opaque' WHERE id = ?")
      .bind(ids[0])
      .run();
    const res = await runRetention(at + HOUR);
    expect(res.status).toBe(200);
    const body = await json<RetentionBody>(res);
    expect(body).toMatchObject({
      archived: 3,
      removed: 3,
      more: false,
      before: new Date(at + HOUR).toISOString(),
    });
    expect(body.objects).toEqual([`deliveries/${FIRST}/2001/01/01/10/${ids[0]}_${ids[2]}.ndjson.gz`]);
    expect((await statusesOf(ids)).size).toBe(0);

    const object = await testEnv.ARCHIVE?.get(body.objects[0] ?? '');
    const rows = await gunzipNdjson(await (object as R2ObjectBody).arrayBuffer());
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows[0]).toMatchObject({ status: 'sent', created_at: at, address: 'enc:v1:test1:opaque' });
  });

  it('one object per hour of creation', async () => {
    const at = Date.UTC(2002, 5, 1, 8, 59);
    const first = await insertDeliveries({ count: 2, atMs: at });
    const second = await insertDeliveries({ count: 1, atMs: at + 2 * 60_000 });
    const body = await json<RetentionBody>(await runRetention(at + HOUR));
    expect(body.objects).toEqual([
      `deliveries/${FIRST}/2002/06/01/08/${first[0]}_${first[1]}.ndjson.gz`,
      `deliveries/${FIRST}/2002/06/01/09/${second[0]}_${second[0]}.ndjson.gz`,
    ]);
    expect(body.removed).toBe(3);
  });

  it('one object per database and hour: each shard archives and removes its own rows', async () => {
    const at = Date.UTC(2002, 7, 1, 8, 10);
    const here = await insertDeliveries({ count: 2, atMs: at, status: 'sent' });
    const there = await insertDeliveries({ count: 1, atMs: at, status: 'sent', bucket: bucketInShard(1) });
    const body = await json<RetentionBody>(await runRetention(at + HOUR));
    expect(body.objects).toEqual([
      `deliveries/${FIRST}/2002/08/01/08/${here[0]}_${here[1]}.ndjson.gz`,
      `deliveries/${OTHER}/2002/08/01/08/${there[0]}_${there[0]}.ndjson.gz`,
    ]);
    expect(body).toMatchObject({ archived: 3, removed: 3 });
    expect((await statusesOf([...here, ...there])).size).toBe(0);
    const object = await testEnv.ARCHIVE?.get(body.objects[1] ?? '');
    const rows = await gunzipNdjson(await (object as R2ObjectBody).arrayBuffer());
    expect(rows.map((r) => r.id)).toEqual(there);
  });

  it('without an ARCHIVE binding nothing is removed (503)', async () => {
    const at = Date.UTC(2003, 0, 1);
    const ids = await insertDeliveries({ count: 2, atMs: at });
    const { ARCHIVE: _archive, ...withoutArchive } = testEnv;
    const res = await runRetention(at + HOUR, withoutArchive as Env);
    expect(res.status).toBe(503);
    expect((await json<ErrorBody>(res)).error.code).toBe('archive_unbound');
    expect((await statusesOf(ids)).size).toBe(2);
    await runRetention(at + HOUR); // leave nothing behind for the next tests
  });

  it('a removed notification answers 404 expired; one never accepted answers not_found', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'r@example.com' }],
    });
    expect((await api('GET', `/v1/notifications/${accepted.id}`)).status).toBe(200);
    const body = await json<RetentionBody>(await runRetention(Date.now() + 1000));
    expect(body.removed).toBeGreaterThanOrEqual(1);
    const gone = await api('GET', `/v1/notifications/${accepted.id}`);
    expect(gone.status).toBe(404);
    expect((await json<ErrorBody>(gone)).error.code).toBe('expired');
    const never = await api('GET', `/v1/notifications/ntf_${'z'.repeat(26)}`);
    expect(never.status).toBe(404);
    expect((await json<ErrorBody>(never)).error.code).toBe('not_found');
  });

  it('the hourly cron archives what is older than RETENTION_DAYS and keeps the rest', async () => {
    const now = Date.UTC(2040, 0, 10, 12, 0);
    const old = await insertDeliveries({ count: 2, atMs: now - 31 * DAY, status: 'sent' });
    const recent = await insertDeliveries({ count: 2, atMs: now - 29 * DAY, status: 'sent' });
    await atTime(now, () => runCron(testEnv, now));
    expect((await statusesOf(old)).size).toBe(0);
    expect((await statusesOf(recent)).size).toBe(2);
    await atTime(now, () => runCron({ ...testEnv, RETENTION_DAYS: '7' } as Env, now));
    expect((await statusesOf(recent)).size).toBe(0);
  });
});
