import { describe, expect, it } from 'vitest';
import { api, json, newContact, testEnv, uniqueUser } from '../helpers/api';
import { readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

const EMAIL = 'grace.hopper.private@example.org';
const PHONE = '+14155559876';
const APNS = 'f00dbabe'.repeat(8);
const SLACK = 'https://hooks.slack.com/services/TPRIV/BPRIV/secretsecretsecret';

/** Every text value in every table, as a D1 export would hold it. */
async function dump(): Promise<string> {
  const { results: tables } = await testEnv.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
  ).all<{ name: string }>();
  const parts: string[] = [];
  for (const { name } of tables) {
    const { results } = await testEnv.DB.prepare(`SELECT * FROM "${name}"`).all();
    parts.push(JSON.stringify(results));
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
    await testEnv.DB.prepare(
      'UPDATE contacts SET email = (SELECT email FROM contacts WHERE user_id = ?) WHERE user_id = ?',
    )
      .bind(a, b)
      .run();
    const res = await api('GET', `/v1/contacts/${b}`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('a@example.com');
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

    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    expect((await api('GET', `/v1/contacts/${userId}`)).status).toBe(404);
    const after = await json<{
      deliveries: { address: unknown; status: string; history: { status: string }[] }[];
    }>(await api('GET', `/v1/notifications/${accepted.id}`));
    expect(after.deliveries[0]).toMatchObject({ address: null, status: 'sent' });
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
    const userId = uniqueUser();
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
    expect(total).toBeGreaterThan(0);
    const row = await testEnv.DB.prepare('SELECT email, phone FROM contacts WHERE user_id = ?')
      .bind(userId)
      .first<{ email: string; phone: string }>();
    expect(row?.email).toMatch(/^enc:v1:new2:/);
    expect(row?.phone).toMatch(/^enc:v1:new2:/);
    expect(await json(await api('GET', `/v1/contacts/${userId}`, undefined, { env: rotated }))).toMatchObject(
      { email: 'rotate@example.com' },
    );
    // the old key alone can no longer read it
    expect((await api('GET', `/v1/contacts/${userId}`)).status).toBe(500);
  });
});
