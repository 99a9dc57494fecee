import { evictAllDurableObjects, runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, json, newContact, testEnv } from '../helpers/api';
import { readDeliveries, readOutbox } from '../helpers/deliveries';
import { type CapturedEnv, drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/** A type made for these tests: an email template that lists the digest, and its digest config. */
async function digestType(name: string, digest: Record<string, unknown>): Promise<string> {
  const type = `dig_${name}_${Date.now().toString(36)}`;
  const parts = {
    subject: '{% if digest %}{{ digest.count }} new comments{% else %}A new comment{% endif %}',
    text: '{% if digest %}{% for item in digest.items %}{{ item.data.body }};{% endfor %}{% else %}{{ body }}{% endif %}',
  };
  expect((await api('PUT', `/v1/templates/${type}/email`, { parts })).status).toBe(200);
  const res = await api('PUT', `/v1/templates/${type}/config`, {
    digest: { channels: ['email'], ...digest },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return type;
}

async function comment(captured: CapturedEnv, type: string, userId: string, body: string, thread = 't1') {
  return sendNotification(captured, { type, recipients: [userId], data: { body, thread_id: thread } });
}

/** Closes the recipient's due digests now (their window is 1 s: wait it out), as its alarm would. */
async function closeWindows(userId: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 1100));
  await runDurableObjectAlarm(testEnv.RECIPIENT.get(testEnv.RECIPIENT.idFromName(`user:${userId}`)));
}

/** The emails the sandbox captured for this user, once `count` have come (the real queue delivers them). */
async function emailsOf(userId: string, count: number): Promise<{ subject?: string; text?: string }[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await readOutbox({ userId })).filter((e) => e.channel === 'email');
    if (found.length >= count || Date.now() > deadline)
      // Without the unsubscribe footer every email gets.
      return found
        .map((e) => ({ subject: e.message.subject, text: e.message.text?.split('\n\nUnsubscribe')[0] }))
        .reverse();
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('digests', () => {
  it('five notifications with one key become one email with count 5; the others say who carried them', async () => {
    const type = await digestType('one', { window: '1s', key: '{{ data.thread_id }}' });
    const userId = await newContact({ email: 'digest.one@example.com' });
    const captured = envWithCapturedQueues();
    const sent = [];
    for (const body of ['a', 'b', 'c', 'd', 'e']) sent.push(await comment(captured, type, userId, body));
    await drainQueues(captured);
    for (const s of sent) expect((await readDeliveries(s.id))[0]?.status).toBe('digested');

    await closeWindows(userId);
    const emails = await emailsOf(userId, 1);
    expect(emails).toEqual([expect.objectContaining({ subject: '5 new comments', text: 'a;b;c;d;e;' })]);
    const carrier = (await readDeliveries(sent[4]?.id ?? ''))[0];
    expect(carrier?.status).toBe('sent');
    for (const s of sent.slice(0, 4)) {
      expect((await readDeliveries(s.id))[0]).toMatchObject({
        status: 'digested',
        reason: `digested into ${carrier?.id}`,
      });
    }
  });

  it('two keys make two emails; maxItems 3 with seven makes 3, 3, then 1 when the window closes', async () => {
    const keyed = await digestType('keys', { window: '1s', key: '{{ data.thread_id }}' });
    const userId = await newContact({ email: 'digest.keys@example.com' });
    const captured = envWithCapturedQueues();
    for (const [body, thread] of [
      ['x1', 'x'],
      ['y1', 'y'],
      ['x2', 'x'],
    ])
      await comment(captured, keyed, userId, body ?? '', thread);
    await drainQueues(captured);
    await closeWindows(userId);
    const byKey = (await emailsOf(userId, 2)).map((e) => e.text).sort();
    expect(byKey).toEqual(['x1;x2;', 'y1;']);

    const capped = await digestType('max', { window: '1s', maxItems: 3 });
    const other = await newContact({ email: 'digest.max@example.com' });
    const seven = envWithCapturedQueues();
    for (const body of ['1', '2', '3', '4', '5', '6', '7']) {
      await comment(seven, capped, other, body);
      await drainQueues(seven);
    }
    expect((await emailsOf(other, 2)).map((e) => e.text)).toEqual(['1;2;3;', '4;5;6;']);
    // Each held one names its carrier.
    const carriers = (await readOutbox({ userId: other })).map((e) => e.deliveryId);
    const held = await json<{ data: { deliveries: { status: string; reason: string | null }[] }[] }>(
      await api('GET', `/v1/notifications?userId=${other}&limit=10`),
    );
    const digested = held.data.flatMap((n) => n.deliveries).filter((d) => d.status === 'digested');
    // 1, 2 and 4, 5 went out in a digest; 7 is still held in the open one.
    const carried = digested.filter((d) => d.reason?.startsWith('digested into'));
    expect(carried).toHaveLength(4);
    for (const d of carried) expect(carriers.map((c) => `digested into ${c}`)).toContain(d.reason);
    expect(digested.filter((d) => d.reason?.startsWith('held for a digest until'))).toHaveLength(1);
    await closeWindows(other);
    expect((await emailsOf(other, 3)).map((e) => e.text)).toEqual(['1;2;3;', '4;5;6;', '7;']);

    // Three in one consumer batch: the third carries the two held just before it in that batch.
    const batched = await newContact({ email: 'digest.batch@example.com' });
    const together = envWithCapturedQueues();
    const three = [];
    for (const body of ['u', 'v', 'w']) three.push(await comment(together, capped, batched, body));
    await drainQueues(together);
    const carrier = three[2]?.deliveries[0]?.id;
    expect((await readDeliveries(three[2]?.id ?? ''))[0]?.status).toBe('sent');
    for (const n of three.slice(0, 2))
      expect((await readDeliveries(n.id))[0]).toMatchObject({
        status: 'digested',
        reason: `digested into ${carrier}`,
      });
  });

  it('sendFirst sends the first at once and a digest of the rest; a canceled one leaves the digest', async () => {
    const type = await digestType('first', { window: '1s', sendFirst: true });
    const userId = await newContact({ email: 'digest.first@example.com' });
    const captured = envWithCapturedQueues();
    await comment(captured, type, userId, 'first');
    await drainQueues(captured);
    expect(await emailsOf(userId, 1)).toEqual([
      expect.objectContaining({ subject: 'A new comment', text: 'first' }),
    ]);
    const kept = await comment(captured, type, userId, 'second');
    const canceled = await comment(captured, type, userId, 'withdrawn');
    const third = await comment(captured, type, userId, 'third');
    await drainQueues(captured);
    const res = await api('DELETE', `/v1/notifications/${canceled.id}`);
    expect(await json(res)).toMatchObject({ canceled: [canceled.deliveries[0]?.id] });
    await closeWindows(userId);
    const emails = await emailsOf(userId, 2);
    expect(emails[1]).toMatchObject({ subject: '2 new comments', text: 'second;third;' });
    expect((await readDeliveries(third.id))[0]?.status).toBe('sent');
    expect((await readDeliveries(kept.id))[0]?.status).toBe('digested');
  });

  it('two consumers folding at once make one digest', async () => {
    const type = await digestType('race', { window: '1s' });
    const userId = await newContact({ email: 'digest.race@example.com' });
    const [a, b] = [envWithCapturedQueues(), envWithCapturedQueues()];
    for (const body of ['p', 'q']) await comment(a, type, userId, body);
    for (const body of ['r', 's']) await comment(b, type, userId, body);
    await Promise.all([drainQueues(a), drainQueues(b)]);
    await closeWindows(userId);
    const emails = await emailsOf(userId, 1);
    await new Promise((r) => setTimeout(r, 500));
    expect((await emailsOf(userId, 1)).length).toBe(1);
    expect(emails[0]?.subject).toBe('4 new comments');
    expect(String(emails[0]?.text).split(';').filter(Boolean).sort()).toEqual(['p', 'q', 'r', 's']);
  });

  it('an open digest survives eviction, is listed, and a flush sends it now', async () => {
    const type = await digestType('flush', { window: '1h', key: '{{ data.thread_id }}' });
    const userId = await newContact({ email: 'digest.flush@example.com' });
    const captured = envWithCapturedQueues();
    for (const [body, thread] of [
      ['m1', 'm'],
      ['n1', 'n'],
      ['m2', 'm'],
    ])
      await comment(captured, type, userId, body ?? '', thread);
    await drainQueues(captured);
    await evictAllDurableObjects();
    const listed = await json<{ data: { key: string; count: number; closesAt: string }[] }>(
      await api('GET', `/v1/contacts/${userId}/digests`),
    );
    expect(listed.data.map((d) => [d.key, d.count]).sort()).toEqual([
      ['m', 2],
      ['n', 1],
    ]);
    const flushed = await api('POST', `/v1/contacts/${userId}/digests/${type}/flush`, { key: 'm' });
    expect(await json(flushed)).toEqual({ flushed: 1 });
    expect((await emailsOf(userId, 1)).map((e) => e.text)).toEqual(['m1;m2;']);
    const left = await json<{ data: { key: string }[] }>(await api('GET', `/v1/contacts/${userId}/digests`));
    expect(left.data.map((d) => d.key)).toEqual(['n']);
  });

  it('a window that closes in quiet hours is released when they end: the carrier waits (deferred)', async () => {
    const type = await digestType('quiet', { window: '1s' });
    const userId = await newContact({ email: 'digest.quiet@example.com' });
    const hour = new Date().getUTCHours();
    const quietHours = {
      start: `${String(hour).padStart(2, '0')}:00`,
      end: `${String((hour + 2) % 24).padStart(2, '0')}:00`,
    };
    expect((await api('PUT', `/v1/contacts/${userId}/preferences`, { quietHours })).status).toBe(200);
    const captured = envWithCapturedQueues();
    const sent = [
      await comment(captured, type, userId, 'late'),
      await comment(captured, type, userId, 'night'),
    ];
    await drainQueues(captured);
    await closeWindows(userId);
    const carrier = sent[1]?.id ?? '';
    const deadline = Date.now() + 10_000;
    while ((await readDeliveries(carrier))[0]?.status !== 'deferred' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await readDeliveries(carrier))[0]).toMatchObject({
      status: 'deferred',
      reason: expect.stringMatching(/^quiet hours/),
    });
    expect(await emailsOf(userId, 0)).toEqual([]);
  });

  it("a scheduled window closes at the next 'at' on one of its days, in the recipient's time zone", async () => {
    const type = await digestType('schedule', { window: { at: '09:00', days: ['mon'] } });
    const userId = await newContact({ email: 'digest.schedule@example.com', timezone: 'Europe/Paris' });
    const captured = envWithCapturedQueues();
    await comment(captured, type, userId, 'weekly');
    await drainQueues(captured);
    const [open] = (
      await json<{ data: { closesAt: string }[] }>(await api('GET', `/v1/contacts/${userId}/digests`))
    ).data;
    const closes = new Date(open?.closesAt ?? '');
    expect(closes.getTime()).toBeGreaterThan(Date.now());
    expect(closes.getTime() - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
    const paris = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Paris',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
    }).format(closes);
    expect(paris).toBe('Mon 09:00');
    const refused = await api('PUT', `/v1/templates/${type}/config`, { digest: { window: { at: '25:00' } } });
    expect(refused.status).toBe(422);
  });

  it("a digest counts once against the recipient's cap", async () => {
    const type = await digestType('cap', { window: '1h', maxItems: 3 });
    const config = await json<Record<string, unknown>>(await api('GET', `/v1/templates/${type}/config`));
    await api('PUT', `/v1/templates/${type}/config`, {
      ...config,
      rateLimits: { email: { limit: 1, windowSeconds: 3600 } },
    });
    const userId = await newContact({ email: 'digest.cap@example.com' });
    const captured = envWithCapturedQueues();
    const first = [];
    for (const body of ['a', 'b', 'c']) first.push(await comment(captured, type, userId, body));
    await drainQueues(captured);
    // Three notifications, one email: the cap of one a hour is used once, by the digest.
    expect((await readDeliveries(first[2]?.id ?? ''))[0]?.status).toBe('sent');
    const second = [];
    for (const body of ['d', 'e', 'f']) second.push(await comment(captured, type, userId, body));
    await drainQueues(captured);
    expect((await readDeliveries(second[2]?.id ?? ''))[0]?.status).toBe('deferred');
  });
});
