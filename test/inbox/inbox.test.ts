import { describe, expect, it } from 'vitest';
import type { InboxFrame, InboxItem } from '../../src/domain/inbox';
import { api, json, testEnv, uniqueUser } from '../helpers/api';
import {
  type CapturedEnv,
  consumeEnqueued,
  envWithCapturedQueues,
  sendNotification,
} from '../helpers/queues';

type Feed = {
  items: InboxItem[];
  counts: { total: number; unread: number; unseen: number };
  seq: number;
  nextCursor: string | null;
};

async function tokenFor(userId: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await api('POST', '/v1/inbox/tokens', { userId, ...body });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ token: string }>(res)).token;
}

/** A client route with an inbox token instead of an API key. */
function client(
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  env?: CapturedEnv['env'],
) {
  return api(method, path, body, { key: token, ...(env ? { env } : {}) });
}

/** Sends one in-app notification to the user and runs the inapp consumer on it. */
async function sendInapp(captured: CapturedEnv, userId: string, excerpt: string, index = -1) {
  const accepted = await sendNotification(captured, {
    type: 'new_comment',
    recipients: [userId],
    data: {
      author: 'Ada',
      subject: 'the roadmap',
      excerpt,
      url: 'https://app.example.com/c/1',
      comment_id: 'c1',
    },
  });
  await consumeEnqueued(captured, 'inapp', { index });
  return accepted;
}

/** An open WebSocket on the user's inbox and the frames it receives. */
async function openSocket(token: string, since?: number) {
  const query = new URLSearchParams({ token, ...(since !== undefined ? { since: String(since) } : {}) });
  const res = await api('GET', `/v1/inbox/ws?${query}`, undefined, {
    key: null,
    headers: { Upgrade: 'websocket' },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket as WebSocket;
  const frames: InboxFrame[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener('message', (event) => {
    if (event.data === 'pong') return;
    frames.push(JSON.parse(String(event.data)) as InboxFrame);
    for (const wake of waiters.splice(0)) wake();
  });
  ws.accept();
  return {
    ws,
    frames,
    /** Waits (at most a second) until `count` frames have arrived. */
    async until(count: number) {
      const deadline = Date.now() + 1000;
      while (frames.length < count && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return frames;
    },
  };
}

async function statusOf(notificationId: string): Promise<string | undefined> {
  const body = await json<{ deliveries: { status: string }[] }>(
    await api('GET', `/v1/notifications/${notificationId}`),
  );
  return body.deliveries[0]?.status;
}

describe('in-app inbox', () => {
  it('a send shows in the feed and on an open socket, and the delivery is delivered', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const socket = await openSocket(token);
    const captured = envWithCapturedQueues();
    const accepted = await sendInapp(captured, userId, 'Looks good to me');

    const [frame] = await socket.until(1);
    expect(frame).toMatchObject({
      seq: 1,
      kind: 'item.created',
      counts: { total: 1, unread: 1, unseen: 1 },
      item: {
        deliveryId: accepted.deliveries[0]?.id,
        notificationId: accepted.id,
        type: 'new_comment',
        category: 'social',
        title: 'Ada commented on the roadmap',
        body: 'Looks good to me',
        url: 'https://app.example.com/c/1',
        actions: [{ label: 'Reply', url: 'https://app.example.com/c/1#reply' }],
        data: { commentId: 'c1' },
        readAt: null,
        seenAt: null,
        archivedAt: null,
      },
    });
    const feed = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'));
    expect(feed.items.map((i) => i.id)).toEqual([frame?.item?.id]);
    expect(feed).toMatchObject({ counts: { total: 1, unread: 1, unseen: 1 }, seq: 1, nextCursor: null });
    expect(await statusOf(accepted.id)).toBe('delivered');
    socket.ws.close();
  });

  it('a delivered item keeps its dedupe claim: the same dedupe key again is a duplicate, not a second item', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    const comment = {
      type: 'new_comment',
      recipients: [userId],
      dedupeKey: 'comment-7',
      data: { author: 'Ada', excerpt: 'once only' },
    };
    const first = await sendNotification(captured, comment);
    const second = await sendNotification(captured, comment);
    await consumeEnqueued(captured, 'inapp', { index: 0 });
    await consumeEnqueued(captured, 'inapp', { index: 1 });
    const delivered = await json<{ deliveries: { status: string; sentAt: string | null }[] }>(
      await api('GET', `/v1/notifications/${first.id}`),
    );
    expect(delivered.deliveries[0]).toMatchObject({ status: 'delivered', sentAt: expect.any(String) });
    expect(await statusOf(second.id)).toBe('duplicate');
    expect((await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'))).items).toHaveLength(1);
  });

  it('quiet hours do not hold an item back; turning inapp off suppresses it', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const hour = new Date().getUTCHours();
    const quiet = {
      start: `${String(hour).padStart(2, '0')}:00`,
      end: `${String((hour + 2) % 24).padStart(2, '0')}:00`,
    };
    expect((await api('PUT', `/v1/contacts/${userId}/preferences`, { quietHours: quiet })).status).toBe(200);
    const captured = envWithCapturedQueues();
    const during = await sendInapp(captured, userId, 'during quiet hours');
    expect(await statusOf(during.id)).toBe('delivered');

    expect(
      (await api('PATCH', `/v1/contacts/${userId}/preferences`, { channels: { inapp: false } })).status,
    ).toBe(200);
    const off = await sendInapp(captured, userId, 'not wanted');
    expect(await statusOf(off.id)).toBe('suppressed');
    expect((await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'))).items.map((i) => i.body)).toEqual(
      ['during quiet hours'],
    );
  });

  it('a repeated send of the same delivery appends once', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    await sendInapp(captured, userId, 'once');
    await consumeEnqueued(captured, 'inapp', { index: 0 });
    const feed = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'));
    expect(feed.items).toHaveLength(1);
    expect(feed.counts).toEqual({ total: 1, unread: 1, unseen: 1 });
  });

  it('two sockets both see a read with the new counts; a second read sends nothing; the delivery is opened', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    const accepted = await sendInapp(captured, userId, 'read me');
    const [first, second] = [await openSocket(token), await openSocket(token)];
    const { items } = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'));
    const id = items[0]?.id ?? '';

    const read = await client(token, 'POST', `/v1/inbox/items/${id}/read`);
    expect(read.status).toBe(200);
    expect(await json(read)).toMatchObject({
      item: { id, readAt: expect.any(String), seenAt: expect.any(String) },
    });
    for (const socket of [first, second]) {
      expect(await socket.until(1)).toEqual([
        expect.objectContaining({ seq: 2, kind: 'item.updated', counts: { total: 1, unread: 0, unseen: 0 } }),
      ]);
    }
    expect((await client(token, 'POST', `/v1/inbox/items/${id}/read`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(first.frames).toHaveLength(1);
    expect(second.frames).toHaveLength(1);
    expect(await statusOf(accepted.id)).toBe('opened');

    await client(token, 'POST', `/v1/inbox/items/${id}/click`);
    expect(await statusOf(accepted.id)).toBe('clicked');
  });

  it("a mark sent on a socket reaches the user's other sockets and records the delivery's open", async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    const accepted = await sendInapp(captured, userId, 'from the socket');
    const [phone, laptop] = [await openSocket(token), await openSocket(token)];
    const { items } = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'));
    phone.ws.send(JSON.stringify({ op: 'mark', ids: [items[0]?.id], action: 'read' }));
    expect(await laptop.until(1)).toEqual([
      expect.objectContaining({ kind: 'item.updated', counts: { total: 1, unread: 0, unseen: 0 } }),
    ]);
    const deadline = Date.now() + 2000;
    while ((await statusOf(accepted.id)) !== 'opened' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await statusOf(accepted.id)).toBe('opened');
    phone.ws.send('{"op":"mark","ids":"all"}');
    const error = await new Promise<string>((resolve) =>
      phone.ws.addEventListener('message', (event) => {
        if (String(event.data).includes('bad_message')) resolve(String(event.data));
      }),
    );
    expect(JSON.parse(error)).toMatchObject({ error: { code: 'bad_message' } });
    phone.ws.close();
    laptop.ws.close();
  });

  it('disconnect, three sends, reconnect with since: exactly those three frames, in order', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    await sendInapp(captured, userId, 'before');
    const socket = await openSocket(token);
    const { seq } = await json<{ seq: number }>(await client(token, 'GET', '/v1/inbox/counts'));
    socket.ws.close();
    for (const text of ['one', 'two', 'three']) await sendInapp(captured, userId, text);

    const again = await openSocket(token, seq);
    const frames = await again.until(3);
    expect(frames.map((f) => [f.seq, f.kind, f.item?.body])).toEqual([
      [seq + 1, 'item.created', 'one'],
      [seq + 2, 'item.created', 'two'],
      [seq + 3, 'item.created', 'three'],
    ]);
    expect(frames.at(-1)?.counts).toEqual({ total: 4, unread: 4, unseen: 4 });
    again.ws.close();
  });

  it('past INBOX_MAX_ITEMS the oldest items go (item.deleted); a since older than the kept log gets reset', async () => {
    const userId = uniqueUser('inbox');
    const env = envWithCapturedQueues({ INBOX_MAX_ITEMS: '2' });
    const token = await tokenFor(userId);
    const socket = await openSocket(token);
    for (const text of ['a', 'b', 'c', 'd']) await sendInapp(env, userId, text);
    const feed = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed'));
    expect(feed.items.map((i) => i.body)).toEqual(['d', 'c']);
    expect(feed.counts).toEqual({ total: 2, unread: 2, unseen: 2 });
    const frames = await socket.until(6);
    expect(frames.map((f) => [f.kind, f.item?.body])).toEqual([
      ['item.created', 'a'],
      ['item.created', 'b'],
      ['item.created', 'c'],
      ['item.deleted', 'a'],
      ['item.created', 'd'],
      ['item.deleted', 'b'],
    ]);
    socket.ws.close();

    // Twice INBOX_MAX_ITEMS frames are kept (4 of 6): from seq 2 on they replay, before that reset.
    const replayed = await openSocket(token, 2);
    expect((await replayed.until(4)).map((f) => f.seq)).toEqual([3, 4, 5, 6]);
    replayed.ws.close();
    const reset = await openSocket(token, 1);
    expect(await reset.until(1)).toEqual([
      { seq: 6, kind: 'reset', counts: { total: 2, unread: 2, unseen: 2 } },
    ]);
    reset.ws.close();
  });

  it('tokens: another user is a 403, an expired token a 401, a key without inbox:token a 403', async () => {
    const [alice, bob] = [uniqueUser('alice'), uniqueUser('bob')];
    const token = await tokenFor(alice);
    expect((await client(token, 'GET', `/v1/inbox/feed?userId=${bob}`)).status).toBe(403);
    expect((await client(token, 'GET', `/v1/inbox/feed?userId=${alice}`)).status).toBe(200);
    expect((await client(null, 'GET', '/v1/inbox/feed')).status).toBe(401);
    expect((await client('not-a-token', 'GET', '/v1/inbox/counts')).status).toBe(401);
    // The admin key is not an inbox token.
    expect((await client('test-admin-key', 'GET', '/v1/inbox/counts')).status).toBe(401);

    const { token: expired } = await json<{ token: string }>(
      await api('POST', '/v1/inbox/tokens', { userId: alice, ttlSeconds: 60 }),
    );
    const later = { ...testEnv, SIGNING_SECRET: testEnv.SIGNING_SECRET } as typeof testEnv;
    const realNow = Date.now;
    Date.now = () => realNow() + 61_000;
    try {
      const res = await client(expired, 'GET', '/v1/inbox/counts', undefined, later);
      expect(res.status).toBe(401);
      expect(await json(res)).toMatchObject({ error: { code: 'token_expired' } });
    } finally {
      Date.now = realNow;
    }

    const created = await json<{ key: string }>(
      await api('POST', '/v1/admin/api-keys', { name: 'sender', scopes: ['notifications:send'] }),
    );
    expect((await api('POST', '/v1/inbox/tokens', { userId: alice }, { key: created.key })).status).toBe(403);
    const minter = await json<{ key: string }>(
      await api('POST', '/v1/admin/api-keys', { name: 'app server', scopes: ['inbox:token'] }),
    );
    expect((await api('POST', '/v1/inbox/tokens', { userId: alice }, { key: minter.key })).status).toBe(201);
    // A token signed before a SIGNING_SECRET rotation still opens the inbox.
    const rotated = {
      ...testEnv,
      SIGNING_SECRET: 'new-secret',
      SIGNING_SECRET_PREVIOUS: testEnv.SIGNING_SECRET,
    };
    expect(
      (await client(token, 'GET', '/v1/inbox/counts', undefined, rotated as typeof testEnv)).status,
    ).toBe(200);
  });

  it('200 concurrent appends and marks leave counts equal to the items', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const namespace = testEnv.INBOX;
    const stub = namespace.get(
      namespace.idFromName(userId),
    ) as unknown as import('../../src/durable/inbox').InboxRpc;
    const ids = Array.from({ length: 100 }, (_, i) => `dlv_01m9${String(i).padStart(22, '0')}`);
    const now = Date.now();
    await Promise.all([
      ...ids.map((deliveryId, i) =>
        stub.append({
          deliveryId,
          notificationId: `ntf_${deliveryId.slice(4)}`,
          type: 'new_comment',
          category: null,
          title: `t${i}`,
          body: 'b',
          url: null,
          avatar: null,
          actions: [],
          data: null,
          createdAt: now,
        }),
      ),
      ...ids.map((deliveryId, i) =>
        stub.mark({ ids: [`inb_${deliveryId.slice(4)}`] }, i % 3 === 0 ? 'archive' : 'read', now),
      ),
    ]);
    const all = await stub.exportItems();
    expect(all).toHaveLength(100);
    const live = all.filter((i) => i.archivedAt === null);
    const counts = await json<Feed['counts']>(await client(token, 'GET', '/v1/inbox/counts'));
    expect(counts).toMatchObject({
      total: live.length,
      unread: live.filter((i) => i.readAt === null).length,
      unseen: live.filter((i) => i.seenAt === null).length,
    });
  });

  it('batch marks, archive filters, paging and an operator delete', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    for (const text of ['1', '2', '3', '4', '5']) await sendInapp(captured, userId, text);
    const first = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed?limit=2'));
    expect(first.items.map((i) => i.body)).toEqual(['5', '4']);
    const second = await json<Feed>(
      await client(token, 'GET', `/v1/inbox/feed?limit=2&cursor=${first.nextCursor}`),
    );
    expect(second.items.map((i) => i.body)).toEqual(['3', '2']);

    const marked = await client(token, 'POST', '/v1/inbox/items/batch', { all: true, action: 'read' });
    expect(await json(marked)).toMatchObject({ changed: 5, counts: { total: 5, unread: 0, unseen: 0 } });
    const archive = await client(token, 'POST', '/v1/inbox/items/batch', {
      ids: [first.items[0]?.id],
      action: 'archive',
    });
    expect(await json(archive)).toMatchObject({ changed: 1, counts: { total: 4 } });
    const only = await json<Feed>(await client(token, 'GET', '/v1/inbox/feed?archived=only'));
    expect(only.items.map((i) => i.body)).toEqual(['5']);
    expect((await client(token, 'POST', '/v1/inbox/items/batch', { action: 'read' })).status).toBe(422);

    const listed = await json<Feed>(await api('GET', `/v1/contacts/${userId}/inbox`));
    expect(listed.items).toHaveLength(5);
    expect((await api('DELETE', `/v1/contacts/${userId}/inbox/${first.items[1]?.id}`)).status).toBe(204);
    expect((await api('DELETE', `/v1/contacts/${userId}/inbox/${first.items[1]?.id}`)).status).toBe(404);
    expect((await json<Feed>(await client(token, 'GET', '/v1/inbox/counts'))) as unknown).toMatchObject({
      total: 3,
    });
  });

  it('CORS from INBOX_ALLOWED_ORIGINS only; ping is answered pong', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const env = { ...testEnv, INBOX_ALLOWED_ORIGINS: 'https://app.example.com' } as typeof testEnv;
    const preflight = (origin: string) =>
      api('OPTIONS', '/v1/inbox/feed', undefined, {
        key: null,
        env,
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'GET',
          'Access-Control-Request-Headers': 'authorization',
        },
      });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('Access-Control-Allow-Headers')?.toLowerCase()).toContain('authorization');
    const refused = await preflight('https://evil.example');
    expect(refused.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(refused.status).toBeGreaterThanOrEqual(400);
    const get = await api('GET', '/v1/inbox/counts', undefined, {
      key: token,
      env,
      headers: { Origin: 'https://app.example.com' },
    });
    expect(get.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example.com');
    // The token route is for the producer's server: never CORS.
    const mint = await api('OPTIONS', '/v1/inbox/tokens', undefined, {
      key: null,
      env,
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' },
    });
    expect(mint.headers.get('Access-Control-Allow-Origin')).toBeNull();

    const socket = await openSocket(token);
    const pong = new Promise<string>((resolve) =>
      socket.ws.addEventListener('message', (event) => {
        if (event.data === 'pong') resolve('pong');
      }),
    );
    socket.ws.send('ping');
    expect(await pong).toBe('pong');
    expect(socket.frames).toEqual([]);
    socket.ws.close();
  });

  it('erasure empties the inbox and the export includes it', async () => {
    const userId = uniqueUser('inbox');
    const token = await tokenFor(userId);
    const captured = envWithCapturedQueues();
    await sendInapp(captured, userId, 'private');
    const exported = await json<{ inbox: InboxItem[] }>(await api('GET', `/v1/contacts/${userId}/export`));
    expect(exported.inbox.map((i) => i.body)).toEqual(['private']);
    expect((await api('DELETE', `/v1/contacts/${userId}`)).status).toBe(204);
    expect(await json(await client(token, 'GET', '/v1/inbox/counts'))).toMatchObject({ total: 0 });
  });
});
