import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { ADMIN_KEY, api, testEnv, uniqueUser } from '../helpers/api';
import { type Accepted, drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { dbOfDelivery } from '../helpers/shards';

const ORIGIN = 'https://herald.test';
let cookie = '';

function browser(
  method: string,
  path: string,
  options: { form?: Record<string, string> | URLSearchParams; env?: Env } = {},
) {
  const headers: Record<string, string> = { Cookie: cookie };
  if (method === 'POST') headers.Origin = ORIGIN;
  if (options.form) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return api(method, path, body, { key: null, headers, env: options.env });
}

async function html(path: string, env?: Env): Promise<string> {
  const res = await browser('GET', path, { env });
  expect(res.status, path).toBe(200);
  return res.text();
}

/** Sends a notification and runs the email consumer on it, so it ends `sent` through the sandbox. */
async function sendEmail(userId: string, data: Record<string, unknown>): Promise<Accepted> {
  const captured = envWithCapturedQueues();
  const accepted = await sendNotification(captured, {
    type: 'payment_reminder',
    recipients: [{ userId, email: 'ada@example.com' }],
    channels: ['email'],
    data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01', ...data },
  });
  await drainQueues(captured);
  return accepted;
}

beforeAll(async () => {
  const res = await api('POST', '/dashboard/login', new URLSearchParams({ key: ADMIN_KEY }).toString(), {
    key: null,
    headers: { Origin: ORIGIN, 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  expect(res.status).toBe(303);
  cookie = (res.headers.get('Set-Cookie') ?? '').split(';')[0] ?? '';
});

describe('dashboard pages', () => {
  it('the overview renders the chart, the funnel and the cards', async () => {
    await sendEmail(uniqueUser('overview'), {});
    const page = await html('/dashboard?window=1h');
    expect(page).toContain('<svg class="chart"');
    expect(page).toContain('Status funnel');
    expect(page).toMatch(/<rect class="ch-email"/);
    expect(page).toContain('Backlog now');
    expect(page).toContain('Dead letters');
    expect(page).toContain('class="active">last 1h</a>');
  });

  it('a notification page shows every delivery timeline and the rendered message', async () => {
    const userId = uniqueUser('timeline');
    const accepted = await sendEmail(userId, { name: 'Ada' });
    const delivery = accepted.deliveries[0];
    if (!delivery) throw new Error('no delivery');
    const page = await html(`/dashboard/notifications/${accepted.id}`);
    expect(page).toContain(`id="${delivery.id}"`);
    // created → queued → sent, in that order, with the provider on the sent entry.
    const statuses = [...page.matchAll(/<span class="badge s-([a-z_]+)">/g)].map((m) => m[1]);
    expect(statuses).toEqual(['sent', 'created', 'queued', 'sent']);
    expect(page).toMatch(/<span class="badge s-sent">sent<\/span><\/td><td>sandbox<\/td>/);
    expect(page).toContain('Rendered message');
    expect(page).toContain('ada@example.com');
    expect(page).toContain('42.00');
    // The search finds it by user, newest first.
    const older = await sendEmail(userId, {});
    const list = await html(`/dashboard/notifications?userId=${userId}`);
    expect(list.indexOf(older.id)).toBeGreaterThan(-1);
    expect(list.indexOf(older.id)).toBeLessThan(list.indexOf(accepted.id));
    expect(await html(`/dashboard/notifications?userId=${userId}&status=failed`)).toContain(
      'No notification matches.',
    );
  });

  it('escapes data with HTML in it everywhere', async () => {
    const attack = '<script>alert("x")</script>';
    const userId = uniqueUser('escape');
    const accepted = await sendEmail(userId, { name: attack, note: '<img src=x onerror=alert(1)>' });
    const delivery = accepted.deliveries[0];
    if (!delivery) throw new Error('no delivery');
    await dbOfDelivery(delivery.id)
      .prepare('UPDATE deliveries SET reason = ?, history = json_insert(history, ?, json(?)) WHERE id = ?')
      .bind(
        '<b onmouseover=alert(2)>bold</b>',
        '$[#]',
        JSON.stringify({
          status: 'delivered',
          at: new Date().toISOString(),
          reason: '"><svg onload=alert(3)>',
        }),
        delivery.id,
      )
      .run();
    const page = await html(`/dashboard/notifications/${accepted.id}`);
    expect(page).not.toContain('<script>');
    expect(page).not.toMatch(/<img|<b onmouseover|<svg onload/);
    expect(page).toContain('&lt;b onmouseover=alert(2)&gt;bold&lt;/b&gt;');
    expect(page).toContain('&quot;&gt;&lt;svg onload=alert(3)&gt;');
    // The template data shown as JSON, escaped.
    expect(page).toContain('&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;');
    const outbox = await html('/dashboard/outbox?channel=email');
    expect(outbox).not.toContain('<script>');
  });

  it('refuses a search filter it cannot use, without echoing it', async () => {
    const page = await html('/dashboard/notifications?userId=%3Cscript%3E&status=nope');
    expect(page).toContain('userId: letters, digits');
    expect(page).toContain('status: not a delivery status');
    expect(page).not.toContain('<script>');
  });

  it('dead letters: listed per channel, and replayed from a form', async () => {
    const userId = uniqueUser('dead');
    const accepted = await sendEmail(userId, {});
    const delivery = accepted.deliveries[0];
    if (!delivery) throw new Error('no delivery');
    // The delivery and its dead letter, in the delivery's shard.
    const shard = dbOfDelivery(delivery.id);
    await shard.batch([
      shard
        .prepare("UPDATE deliveries SET status = 'failed', reason = 'gave up' WHERE id = ?")
        .bind(delivery.id),
      shard
        .prepare(
          "INSERT INTO dead_letters (delivery_id, channel, reason, created_at) VALUES (?, 'email', 'gave up', ?)",
        )
        .bind(delivery.id, Date.now()),
    ]);
    const list = await html('/dashboard/dead-letters?channel=email');
    expect(list).toContain(delivery.id);
    expect(list).toContain(`<input type="hidden" name="id" value="${delivery.id}"/>`);
    expect(list).toMatch(/Replay all \d+ email/);

    const { env, queues } = envWithCapturedQueues();
    const res = await browser('POST', '/dashboard/dead-letters/replay', { form: { id: delivery.id }, env });
    expect(res.status).toBe(303);
    expect(res.headers.get('Location')).toBe('/dashboard/dead-letters?replayed=1');
    expect(queues.email.ids()).toEqual([delivery.id]);
    const row = await shard
      .prepare('SELECT status FROM deliveries WHERE id = ?')
      .bind(delivery.id)
      .first<{ status: string }>();
    expect(row?.status).toBe('queued');
    const after = await html('/dashboard/dead-letters?replayed=1&channel=email');
    expect(after).toContain('Replayed 1 delivery.');
    expect(after).not.toContain(`value="${delivery.id}"`);
    // Replaying it again does nothing, and says so.
    const again = await browser('POST', '/dashboard/dead-letters/replay', { form: { id: delivery.id }, env });
    expect(again.headers.get('Location')).toBe('/dashboard/dead-letters?replayed=0');
  });

  it('providers: every channel listed, and a switch that works', async () => {
    const page = await html('/dashboard/providers');
    for (const channel of ['email', 'sms', 'push', 'chat', 'webhook'])
      expect(page).toContain(`ch-${channel}`);
    expect(page).toContain('action="/dashboard/providers/mailgun"');
    const read = () =>
      testEnv.DB.prepare("SELECT enabled FROM provider_settings WHERE name = 'mailgun'").first<{
        enabled: number;
      }>();
    try {
      const off = await browser('POST', '/dashboard/providers/mailgun', { form: { enabled: 'off' } });
      expect(off.status).toBe(303);
      expect(off.headers.get('Location')).toBe('/dashboard/providers?switched=mailgun&enabled=off');
      expect((await read())?.enabled).toBe(0);
      expect(await html('/dashboard/providers?switched=mailgun&enabled=off')).toContain(
        'mailgun switched off.',
      );
    } finally {
      const on = await browser('POST', '/dashboard/providers/mailgun', { form: { enabled: 'on' } });
      expect(on.status).toBe(303);
    }
    expect((await read())?.enabled).toBe(1);
    expect(
      (await browser('POST', '/dashboard/providers/carrier-pigeon', { form: { enabled: 'off' } })).status,
    ).toBe(404);
    expect(
      (await browser('POST', '/dashboard/providers/mailgun', { form: { enabled: 'maybe' } })).status,
    ).toBe(422);
  });

  it('the outbox page exists only in sandbox mode', async () => {
    const userId = uniqueUser('outbox');
    await sendEmail(userId, {});
    expect(await html('/dashboard/outbox')).toContain('ada@example.com');
    const real = {
      ...testEnv,
      EMAIL_PROVIDERS: 'resend',
      SMS_PROVIDERS: 'twilio',
      PUSH_PROVIDERS: 'fcm',
      CHAT_PROVIDERS: 'slack',
      WEBHOOK_PROVIDERS: 'webhook',
    } as Env;
    expect((await browser('GET', '/dashboard/outbox', { env: real })).status).toBe(404);
    expect(await html('/dashboard', real)).not.toContain('href="/dashboard/outbox"');
  });

  it('an unknown notification or page is an HTML 404', async () => {
    const res = await browser('GET', '/dashboard/notifications/ntf_nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/html/);
    expect((await browser('GET', '/dashboard/nothing-here')).status).toBe(404);
  });

  it("shows a user's inbox on the notification and on the user's page, and escapes it", async () => {
    const userId = uniqueUser('dash_inbox');
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'new_comment',
      recipients: [userId],
      data: {
        author: '<b>Ada</b>',
        excerpt: 'See <script>alert(1)</script>',
        url: 'https://app.example.com/c/9',
      },
    });
    await drainQueues(captured);
    const notification = await html(`/dashboard/notifications/${accepted.id}`);
    expect(notification).toContain('Inbox item');
    expect(notification).toContain('&lt;b&gt;Ada&lt;/b&gt; commented on your post');
    expect(notification).not.toContain('<script>alert(1)</script>');
    expect(notification).toContain(`href="/dashboard/users/${userId}"`);

    const user = await html(`/dashboard/users/${userId}`);
    expect(user).toContain('1 items, 1 unread, 1 unseen');
    expect(user.match(/class="inbox-item"/g)).toHaveLength(1);
    expect(user).toContain(`href="/dashboard/notifications/${accepted.id}"`);
    expect((await browser('GET', '/dashboard/users/%3Cscript%3E')).status).toBe(404);
  });

  it("shows an open digest holding a notification's delivery, and a scheduled escalation step", async () => {
    const type = `dash_digest_${Date.now().toString(36)}`;
    await api('PUT', `/v1/templates/${type}/email`, { parts: { subject: 'S', text: 'T' } });
    await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'T' } });
    await api('PUT', `/v1/templates/${type}/config`, {
      digest: { window: '1h', channels: ['email'] },
      escalation: [{ channel: 'email' }, { channel: 'sms', after: '30m' }],
    });
    const userId = uniqueUser('dash_digest');
    await api('PUT', `/v1/contacts/${userId}`, { email: 'dash.digest@example.com', phone: '+14155550199' });
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, { type, recipients: [userId], data: {} });
    await drainQueues(captured);
    const page = await html(`/dashboard/notifications/${accepted.id}`);
    expect(page).toContain(`Held in an open digest (${type}, email): 1 items, goes out at`);
    expect(page).toContain('class="badge s-scheduled"');
  });
});
