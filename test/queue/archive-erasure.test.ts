import { describe, expect, it } from 'vitest';
import { bucketOfKey } from '../../src/domain/shards';
import { createServices } from '../../src/services/container';
import { openArchived, sealForArchive } from '../../src/services/operations/archive-seal';
import { gunzipNdjson } from '../../src/storage/archive-store';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import { envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { commit, dbOfUser, sql } from '../helpers/shards';

type Row = Record<string, unknown>;
type RetentionBody = { archived: number; removed: number; objects: string[] };

const services = () => createServices(testEnv);

/** Sends one email to each user (inline recipients: no contact row), data shared by them all. */
async function send(userIds: string[], data: Record<string, unknown>) {
  return sendNotification(envWithCapturedQueues(), {
    type: 'payment_reminder',
    recipients: userIds.map((userId) => ({ userId, email: `${userId}@example.com` })),
    data,
  });
}

/** The notification's rows as D1 holds them, in every database. */
function rowsOf(notificationId: string): Promise<Row[]> {
  return sql<Row>('SELECT * FROM deliveries WHERE notification_id = ? ORDER BY id', notificationId);
}

/** Runs retention now for everything created so far; the rows the archive objects hold. */
async function archiveEverything(): Promise<Row[]> {
  const res = await api('POST', '/v1/admin/retention/run', {
    before: new Date(Date.now() + 60_000).toISOString(),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = await json<RetentionBody>(res);
  const rows: Row[] = [];
  for (const key of body.objects) {
    const object = (await testEnv.ARCHIVE?.get(key)) as R2ObjectBody;
    rows.push(...(await gunzipNdjson(await object.arrayBuffer())));
  }
  return rows;
}

/** A part's head row: the one holding its template data. */
const isHead = (row: Row) => row.head_id === null || row.head_id === row.id;

const byId = (rows: Row[]) => [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));

/** A user id in the same bucket as `userId` (so both land in one part of a notification). */
function neighbourOf(userId: string): string {
  for (let i = 0; ; i++) {
    const candidate = `${userId}_n${i}`;
    if (bucketOfKey(candidate) === bucketOfKey(userId)) return candidate;
  }
}

describe('the archive is sealed per user, and erasure reaches it', () => {
  it('archived addresses and data are sealed with the user key; opened, they are the rows D1 held', async () => {
    const userId = uniqueUser('archived');
    const accepted = await send([userId], { order_id: 'A-1' });
    const held = await rowsOf(accepted.id);
    expect(held.length).toBeGreaterThan(0);

    const archived = byId((await archiveEverything()).filter((r) => r.notification_id === accepted.id));
    expect(archived.map((r) => r.id)).toEqual(held.map((r) => r.id));
    for (const row of archived) expect(String(row.address)).toMatch(/^usr:v1:/);
    expect(archived.find((r) => isHead(r))?.data).toMatch(/^usr:v1:/);
    // Not a single ciphertext D1 held is in the archive as such: only its sealed form.
    const text = JSON.stringify(archived);
    for (const row of held) {
      if (row.address) expect(text).not.toContain(String(row.address));
      if (row.data) expect(text).not.toContain(String(row.data));
    }

    const opened = await openArchived(services(), archived);
    expect(opened).toEqual({ rows: held, erased: 0 });
    expect(await sql('SELECT user_id FROM user_keys WHERE user_id = ?', userId)).toEqual([
      { user_id: userId },
    ]);
  });

  it('erasing a user whose deliveries are only in the archive destroys their key: no copy opens again', async () => {
    const userId = uniqueUser('gone');
    const other = uniqueUser('stays');
    const mine = await send([userId], { order_id: 'B-1' });
    const theirs = await send([other], { order_id: 'B-2' });
    const archived = await archiveEverything();
    expect(await rowsOf(mine.id)).toEqual([]);

    // Herald holds nothing on the user in D1 but their key: erasure still finds them.
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    const [key] = await sql<{ wrapped: string | null; erased_at: number | null; destroyed: number }>(
      'SELECT wrapped, erased_at, destroyed FROM user_keys WHERE user_id = ?',
      userId,
    );
    expect(key).toMatchObject({ wrapped: null, erased_at: expect.any(Number), destroyed: 1 });

    const gone = archived.filter((r) => r.notification_id === mine.id);
    const opened = await openArchived(services(), gone);
    expect(opened.erased).toBe(gone.length + 1); // every address, and the data of the head
    for (const row of opened.rows) {
      expect(row.address).toBeNull();
      expect(row).toMatchObject({ id: expect.any(String), status: expect.any(String), user_id: userId });
    }
    expect(opened.rows.find((r) => isHead(r))?.data).toBeNull();
    // Another user's archived copies still open.
    const kept = await openArchived(
      services(),
      archived.filter((r) => r.notification_id === theirs.id),
    );
    expect(kept.erased).toBe(0);
    expect(String(kept.rows[0]?.address)).toMatch(/^enc:v1:/);

    // Nothing left to erase or export: a 404 from now on.
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(404);
    expect((await api('GET', `/v1/contacts/${userId}/export`)).status).toBe(404);
  });

  it('data shared with another recipient stays under the deployment key; each address under its own user key', async () => {
    const first = uniqueUser('shared');
    const second = neighbourOf(first);
    const accepted = await send([first, second], { order_id: 'C-1' });
    const held = await rowsOf(accepted.id);
    const archived = (await archiveEverything()).filter((r) => r.notification_id === accepted.id);
    const head = archived.find((r) => isHead(r));
    expect(head?.data).toBe(held.find((r) => isHead(r))?.data);
    expect(String(head?.data)).toMatch(/^enc:v1:/);

    expect((await api('DELETE', `/v1/contacts/${first}`)).status).toBe(204);
    const opened = await openArchived(services(), archived);
    const addressOf = (userId: string) => opened.rows.find((r) => r.user_id === userId)?.address;
    expect(addressOf(first)).toBeNull();
    expect(addressOf(second)).toBe(held.find((r) => r.user_id === second)?.address);
    expect(opened.rows.find((r) => isHead(r))?.data).toBe(head?.data);
  });

  it('rows read before an erasure are archived without their personal fields: an erased user id gets no new key', async () => {
    const userId = uniqueUser('raced');
    const row = {
      id: 'dlv_test_raced',
      user_id: userId,
      head_id: null,
      address: 'enc:v1:test1:address-read-before-erasure',
      data: 'enc:v1:test1:data-read-before-erasure',
    };
    // The erasure lands between retention's read of the rows and its sealing of them.
    await commit([services().userKeys.eraseStatement(userId, Date.now())]);
    const [sealed] = await sealForArchive(services(), [row]);
    expect(sealed).toEqual({ ...row, address: null, data: null });
    expect(
      await dbOfUser(userId).prepare('SELECT wrapped FROM user_keys WHERE user_id = ?').bind(userId).first(),
    ).toEqual({ wrapped: null });
  });

  it('the export of an erased user says the archive was erased too', async () => {
    const userId = uniqueUser('exported');
    await send([userId], { order_id: 'D-1' });
    await archiveEverything();
    const later = await send([userId], { order_id: 'D-2' });
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    const exported = await json<{ erased: Record<string, unknown>; deliveries: { id: string }[] }>(
      await api('GET', `/v1/contacts/${userId}/export`),
    );
    expect(exported.deliveries.map((d) => d.id)).toEqual(later.deliveries.map((d) => d.id));
    expect(exported.erased).toMatchObject({ contact: false, deliveries: 1, notifications: 1, archive: true });
  });

  it('user keys re-wrap under a rotated DATA_ENCRYPTION_KEY', async () => {
    const userId = uniqueUser('rotated');
    const accepted = await send([userId], { order_id: 'E-1' });
    const archived = (await archiveEverything()).filter((r) => r.notification_id === accepted.id);
    const before = await sql<{ wrapped: string }>('SELECT wrapped FROM user_keys WHERE user_id = ?', userId);
    const fresh = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    const rotated = { ...testEnv, DATA_ENCRYPTION_KEY: `new1:${fresh},${testEnv.DATA_ENCRYPTION_KEY}` };
    let cursor: string | null = '';
    let total = 0;
    while (cursor !== null) {
      const page: { rotated: number; nextCursor: string | null } = await json(
        await api('POST', '/v1/admin/rotate-key', { table: 'user_keys', cursor }, { env: rotated }),
      );
      total += page.rotated;
      cursor = page.nextCursor;
    }
    expect(total).toBeGreaterThan(0);
    const after = await sql<{ wrapped: string }>('SELECT wrapped FROM user_keys WHERE user_id = ?', userId);
    expect(after[0]?.wrapped).toMatch(/^enc:v1:new1:/);
    expect(after[0]?.wrapped).not.toBe(before[0]?.wrapped);
    // The same key, re-wrapped: the archive still opens under the rotated secret.
    const opened = await openArchived(createServices(rotated), archived);
    expect(opened.erased).toBe(0);
    expect(String(opened.rows[0]?.address)).toMatch(/^enc:v1:/);
  });
});
