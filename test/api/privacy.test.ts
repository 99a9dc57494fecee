import { describe, expect, it } from 'vitest';
import { api, json, newContact, testEnv, uniqueUser } from '../helpers/api';
import { readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { dbOfDelivery, dbOfUser, router, shardIndexOfId, sql, userInShard } from '../helpers/shards';

const EMAIL = 'grace.hopper.private@example.org';
const PHONE = '+14155559876';
const APNS = 'f00dbabe'.repeat(8);
const SLACK = 'https://hooks.slack.com/services/TPRIV/BPRIV/secretsecretsecret';

/** Every text value in every table of every database (home and shards), as D1 exports would hold it. */
async function dump(): Promise<string> {
  const parts: string[] = [];
  for (const { db } of [router().home, ...router().shards]) {
    const { results: tables } = await db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
      )
      .all<{ name: string }>();
    for (const { name } of tables) {
      const { results } = await db.prepare(`SELECT * FROM "${name}"`).all();
      parts.push(JSON.stringify(results));
    }
  }
  return parts.join('\n');
}

describe('personal data at rest', () => {
  it('a D1 dump after creating contacts and sending to them holds no email, phone, token or URL in clear', async () => {
    const userId = uniqueUser();
    expect(
      (
        await api('PUT', `/v1/contacts/${userId}`, {
          email: EMAIL,
          phone: PHONE,
          deviceTokens: [{ deviceToken: APNS, platform: 'apns' }],
          externalChannels: [{ platform: 'slack', url: SLACK }],
        })
      ).status,
    ).toBe(200);
    const captured = envWithCapturedQueues({ EMAIL_PROVIDERS: 'sandbox' });
    await sendNotification(captured, {
      type: 'security_alert',
      recipients: [userId, { email: `inline-${EMAIL}` }],
      channels: ['push', 'chat'],
    });
    // The API still reads them back decrypted.
    expect(await json(await api('GET', `/v1/contacts/${userId}`))).toMatchObject({
      email: EMAIL,
      phone: PHONE,
    });
    const text = await dump();
    for (const secret of [EMAIL, PHONE, APNS, SLACK, 'grace.hopper', 'TPRIV'])
      expect(text).not.toContain(secret);
    expect(text).toMatch(/enc:v1:test1:/);
  });

  it('a ciphertext cannot be moved to another contact (bound to the user id)', async () => {
    const a = uniqueUser();
    const b = uniqueUser();
    await api('PUT', `/v1/contacts/${a}`, { email: 'a@example.com' });
    await api('PUT', `/v1/contacts/${b}`, { email: 'b@example.com' });
    // a's ciphertext, read in a's database, written over b's in b's (they may be two shards).
    const source = await dbOfUser(a)
      .prepare('SELECT email FROM contacts WHERE user_id = ?')
      .bind(a)
      .first<{ email: string }>();
    expect(source?.email).toMatch(/^enc:v1:/);
    await dbOfUser(b).prepare('UPDATE contacts SET email = ? WHERE user_id = ?').bind(source?.email, b).run();
    const res = await api('GET', `/v1/contacts/${b}`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('a@example.com');
  });
});

/** A notification's head row (its first delivery), as its shard holds it. */
async function headRow(deliveryId: string) {
  return dbOfDelivery(deliveryId)
    .prepare('SELECT id, data, address FROM deliveries WHERE id = ?')
    .bind(deliveryId)
    .first<{ id: string; data: string | null; address: string | null }>();
}

describe('template data at rest', () => {
  it('template data is not in clear in D1, and reads back through the API, the export and the consumer', async () => {
    const userId = await newContact({ email: EMAIL });
    const data = { order_id: 'ORDER-PRIVATE-7731', carrier: 'Owl Post', buyer: 'Grace Private Hopper' };
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['email'],
      data,
    });
    const head = await headRow(accepted.deliveries[0]?.id ?? '');
    expect(head?.data).toMatch(/^enc:v1:test1:/);
    const text = await dump();
    for (const clear of ['ORDER-PRIVATE-7731', 'Owl Post', 'Grace Private Hopper'])
      expect(text).not.toContain(clear);

    expect(
      (await json<{ data: unknown }>(await api('GET', `/v1/notifications/${accepted.id}`))).data,
    ).toEqual(data);
    const exported = await json<{ notifications: { data: unknown }[] }>(
      await api('GET', `/v1/contacts/${userId}/export`),
    );
    expect(exported.notifications).toEqual([expect.objectContaining({ data })]);
    await drainQueues(captured);
    const [sent] = await readOutbox({ notificationId: accepted.id });
    expect(sent?.message.html).toContain('ORDER-PRIVATE-7731');
  });

  it('data stored in clear before encryption still reads, and key rotation encrypts it', async () => {
    const userId = await newContact({ email: EMAIL });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['email'],
      data: { order_id: 'OLD-ROW-1' },
    });
    const headId = accepted.deliveries[0]?.id ?? '';
    // As a version before data encryption wrote it.
    await dbOfDelivery(headId)
      .prepare('UPDATE deliveries SET data = ? WHERE id = ?')
      .bind(JSON.stringify({ order_id: 'OLD-ROW-1' }), headId)
      .run();
    expect(
      (await json<{ data: unknown }>(await api('GET', `/v1/notifications/${accepted.id}`))).data,
    ).toEqual({
      order_id: 'OLD-ROW-1',
    });
    await drainQueues(captured);
    expect((await readOutbox({ notificationId: accepted.id }))[0]?.message.html).toContain('OLD-ROW-1');

    const page = await json<{ rotated: number }>(
      await api('POST', '/v1/admin/rotate-key', {
        table: 'deliveries',
        // A cursor names its database (`<shard index>|<cursor in it>`): the page just before the head.
        cursor: `${shardIndexOfId(headId)}|${headId.slice(0, -1)}`,
        limit: 1,
      }),
    );
    expect(page.rotated).toBe(1);
    expect((await headRow(headId))?.data).toMatch(/^enc:v1:test1:/);
    expect(
      (await json<{ data: unknown }>(await api('GET', `/v1/notifications/${accepted.id}`))).data,
    ).toEqual({
      order_id: 'OLD-ROW-1',
    });
  });

  it('encrypted data is bound to its notification: copied to another, it does not read', async () => {
    const captured = envWithCapturedQueues();
    const send = (order: string) =>
      sendNotification(captured, {
        type: 'order_shipped',
        recipients: [{ email: 'bound@example.com' }],
        channels: ['email'],
        data: { order_id: order },
      });
    const [a, b] = [await send('BOUND-A'), await send('BOUND-B')];
    const headA = a.deliveries[0]?.id ?? '';
    const headB = b.deliveries[0]?.id ?? '';
    // A's ciphertext, read in its shard, written over B's in B's shard.
    const source = await headRow(headA);
    expect(source?.data).toMatch(/^enc:v1:/);
    await dbOfDelivery(headB)
      .prepare('UPDATE deliveries SET data = ? WHERE id = ?')
      .bind(source?.data, headB)
      .run();
    const res = await api('GET', `/v1/notifications/${b.id}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('BOUND-A');
    expect((JSON.parse(text) as { data: unknown }).data).toEqual({});
  });
});

describe('erasure and export', () => {
  it('export returns everything held on the user; erasure removes personal data, deliveries keep only non-personal fields', async () => {
    const userId = await newContact({ email: EMAIL, phone: PHONE });
    await api('PUT', `/v1/contacts/${userId}/preferences`, { channels: { sms: false } });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['email'],
      data: { order_id: 'A9' },
    });
    await drainQueues(captured);

    const exported = await api('GET', `/v1/contacts/${userId}/export`);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('Cache-Control')).toBe('no-store');
    const body = await json<{
      contact: { email: string };
      preferences: { channels: Record<string, boolean> };
      deliveries: { address: { email: string }; status: string }[];
      notifications: { id: string; data: Record<string, unknown> }[];
    }>(exported);
    expect(body.contact.email).toBe(EMAIL);
    expect(body.preferences.channels).toEqual({ sms: false });
    expect(body.deliveries[0]).toMatchObject({ status: 'sent', address: { channel: 'email', email: EMAIL } });
    expect(body.notifications).toEqual([
      expect.objectContaining({ id: accepted.id, data: { order_id: 'A9' } }),
    ]);

    expect(body).toMatchObject({ erased: null });

    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    expect((await api('GET', `/v1/contacts/${userId}`)).status).toBe(404);
    const after = await json<{
      data: unknown;
      deliveries: { address: unknown; status: string; history: { status: string }[] }[];
    }>(await api('GET', `/v1/notifications/${accepted.id}`));
    expect(after.deliveries[0]).toMatchObject({ address: null, status: 'sent' });
    // The data of a notification sent to this user alone is erased too.
    expect(after.data).toEqual({});
    expect((await headRow(accepted.deliveries[0]?.id ?? ''))?.data).toMatch(/^erased:\d+:contact$/);
    expect(after.deliveries[0]?.history.map((h) => h.status)).toEqual(['created', 'queued', 'sent']);
    expect(await readOutbox({ userId })).toEqual([]);
    expect(await json(await api('GET', `/v1/contacts/${userId}/preferences`))).toEqual({
      channels: {},
      types: {},
      quietHours: null,
    });
  });

  it('erasing an unknown contact is 404', async () => {
    expect((await api('DELETE', `/v1/contacts/${uniqueUser()}`)).status).toBe(404);
    expect((await api('GET', `/v1/contacts/${uniqueUser()}/export`)).status).toBe(404);
  });

  it('erasure of a user id that was only ever an inline recipient erases its addresses and data, and the export says so', async () => {
    const userId = uniqueUser('inline-only');
    const inlineEmail = 'inline.only.private@example.org';
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [{ userId, email: inlineEmail, phone: PHONE }],
      channels: ['email', 'sms'],
      data: { order_id: 'INLINE-ONLY-55' },
    });
    await drainQueues(captured);
    const before = await json<{ contact: unknown; deliveries: { address: unknown }[]; erased: unknown }>(
      await api('GET', `/v1/contacts/${userId}/export`),
    );
    expect(before.contact).toBeNull();
    expect(before.deliveries).toHaveLength(2);
    expect(before.erased).toBeNull();

    const erased = await api('DELETE', `/v1/contacts/${userId}`);
    expect(erased.status).toBe(204);
    const rows = await sql<{ address: string | null; data: string | null }>(
      'SELECT address, data FROM deliveries WHERE user_id = ?',
      userId,
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.address).toMatch(/^erased:\d+$/);
      expect(row.data === null || /^erased:\d+$/.test(row.data)).toBe(true);
    }
    expect(
      (await json<{ data: unknown }>(await api('GET', `/v1/notifications/${accepted.id}`))).data,
    ).toEqual({});

    const after = await api('GET', `/v1/contacts/${userId}/export`);
    expect(after.status).toBe(200);
    const exported = await json<{
      contact: unknown;
      preferences: unknown;
      deliveries: { address: unknown; status: string }[];
      notifications: { data: unknown }[];
      erased: { at: string; contact: boolean; deliveries: number; notifications: number };
    }>(after);
    expect(exported.contact).toBeNull();
    expect(exported.preferences).toBeNull();
    expect(exported.deliveries.map((d) => d.address)).toEqual([null, null]);
    expect(exported.notifications).toEqual([expect.objectContaining({ data: {} })]);
    expect(exported.erased).toEqual({
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      contact: false,
      deliveries: 2,
      notifications: 1,
      archive: false,
    });
    const text = JSON.stringify(exported);
    for (const clear of [inlineEmail, PHONE, 'INLINE-ONLY-55']) expect(text).not.toContain(clear);
    expect(await dump()).not.toContain('INLINE-ONLY-55');
    // Erasing again changes nothing and is not an error: Herald still knows the id.
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
  });

  it("erasure keeps the data of a notification other recipients share, and erases only this user's addresses", async () => {
    const userId = await newContact({ email: 'shared.erased@example.org' });
    const other = await newContact({ email: 'shared.kept@example.org' });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId, other],
      channels: ['email'],
      data: { order_id: 'SHARED-9' },
    });
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    const after = await json<{ data: unknown; deliveries: { userId: string; address: unknown }[] }>(
      await api('GET', `/v1/notifications/${accepted.id}`),
    );
    expect(after.data).toEqual({ order_id: 'SHARED-9' });
    expect(after.deliveries.find((d) => d.userId === userId)?.address).toBeNull();
    expect(after.deliveries.find((d) => d.userId === other)?.address).toEqual({
      channel: 'email',
      email: 'shared.kept@example.org',
    });
    const exported = await json<{ erased: { contact: boolean; deliveries: number; notifications: number } }>(
      await api('GET', `/v1/contacts/${userId}/export`),
    );
    expect(exported.erased).toMatchObject({ contact: true, deliveries: 1, notifications: 0 });
  });
});

describe('without DATA_ENCRYPTION_KEY', () => {
  it('personal data is refused (503), never stored in clear', async () => {
    const env = { ...testEnv, DATA_ENCRYPTION_KEY: undefined };
    const userId = uniqueUser();
    const res = await api('PUT', `/v1/contacts/${userId}`, { email: 'clear@example.com' }, { env });
    expect(res.status).toBe(503);
    expect((await json<{ error: { code: string } }>(res)).error.code).toBe('encryption_not_configured');
    expect(await dump()).not.toContain('clear@example.com');
  });
});

describe('key rotation', () => {
  it('rows written under the old key are re-encrypted under the new first key and still read back', async () => {
    // A contact in each shard: the pages go database by database, and reach both.
    const userIds = [userInShard(0), userInShard(1)];
    for (const userId of userIds)
      await api('PUT', `/v1/contacts/${userId}`, { email: 'rotate@example.com', phone: '+14155550000' });
    const rotated = {
      ...testEnv,
      DATA_ENCRYPTION_KEY: `new2:${btoa(String.fromCharCode(...new Uint8Array(32).fill(7)))},${testEnv.DATA_ENCRYPTION_KEY}`,
    };
    let cursor = '';
    let total = 0;
    for (;;) {
      const page = await json<{ rotated: number; nextCursor: string | null }>(
        await api(
          'POST',
          '/v1/admin/rotate-key',
          { table: 'contacts', cursor, limit: 500 },
          { env: rotated },
        ),
      );
      total += page.rotated;
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(total).toBeGreaterThanOrEqual(userIds.length);
    for (const userId of userIds) {
      const row = await dbOfUser(userId)
        .prepare('SELECT email, phone FROM contacts WHERE user_id = ?')
        .bind(userId)
        .first<{ email: string; phone: string }>();
      expect(row?.email, userId).toMatch(/^enc:v1:new2:/);
      expect(row?.phone, userId).toMatch(/^enc:v1:new2:/);
      expect(
        await json(await api('GET', `/v1/contacts/${userId}`, undefined, { env: rotated })),
      ).toMatchObject({ email: 'rotate@example.com' });
      // the old key alone can no longer read it
      expect((await api('GET', `/v1/contacts/${userId}`)).status).toBe(500);
    }
  });
});
