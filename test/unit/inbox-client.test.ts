import { describe, expect, it, vi } from 'vitest';
import { inboxAssetRoutes } from '../../src/api/routes/inbox-assets';
import type { Env } from '../../src/config/env';
import { INBOX_JS } from '../../src/inbox-client/bundle.generated';
import {
  type ConnectionEvent,
  type FeedPage,
  HeraldInbox,
  HeraldInboxError,
  type HeraldInboxOptions,
  type InboxCounts,
  type InboxFrame,
  type InboxItem,
  type WebSocketLike,
} from '../../src/inbox-client/client';

const BASE = 'https://herald.test';
const TOKEN = 'tok_abc.def';

function item(id: string, extra: Partial<InboxItem> = {}): InboxItem {
  return {
    id,
    deliveryId: `dlv_${id.slice(4)}`,
    notificationId: 'ntf_1',
    type: 'new_comment',
    category: 'social',
    title: `Title ${id}`,
    body: 'Body',
    url: null,
    avatar: null,
    actions: [],
    data: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    seenAt: null,
    readAt: null,
    archivedAt: null,
    ...extra,
  };
}

const counts = (unread: number, total = 10, unseen = unread): InboxCounts => ({ total, unread, unseen });

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  keepalive: boolean | undefined;
}

/** A fetch that records each call and answers from `answer` (JSON 200 unless it returns a Response). */
function fakeFetch(answer: (call: Call) => unknown) {
  const calls: Call[] = [];
  const fetch = async (url: string, init: RequestInit & { keepalive?: boolean }) => {
    const call: Call = {
      url,
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>) },
      body: init.body === undefined ? undefined : String(init.body),
      keepalive: init.keepalive,
    };
    calls.push(call);
    const result = answer(call);
    if (result instanceof Response) return result;
    return Response.json(result);
  };
  return { calls, fetch };
}

/** A WebSocket constructor whose sockets the test drives from the server's side. */
function fakeSockets() {
  const sockets: FakeSocket[] = [];
  class FakeSocket implements WebSocketLike {
    readyState = 0;
    onopen: WebSocketLike['onopen'] = null;
    onmessage: WebSocketLike['onmessage'] = null;
    onclose: WebSocketLike['onclose'] = null;
    onerror: WebSocketLike['onerror'] = null;
    sent: string[] = [];
    closedWith: { code?: number; reason?: string } | undefined;
    constructor(readonly url: string) {
      sockets.push(this);
    }
    send(data: string) {
      this.sent.push(data);
    }
    close(code?: number, reason?: string) {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }
    // the server's side
    accept() {
      this.readyState = 1;
      this.onopen?.({});
    }
    frame(frame: InboxFrame | string) {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: '' });
    }
  }
  return { sockets, WebSocket: FakeSocket };
}

function page(seq: number, items: InboxItem[] = [], unread = 1): FeedPage {
  return { items, counts: counts(unread), seq, nextCursor: null };
}

/** A client with a fake fetch and fake sockets; fast timers unless told otherwise. */
function setup(answer: (call: Call) => unknown = () => page(5), options: Partial<HeraldInboxOptions> = {}) {
  const http = fakeFetch(answer);
  const ws = fakeSockets();
  const client = new HeraldInbox({
    baseUrl: `${BASE}/`,
    token: TOKEN,
    fetch: http.fetch,
    WebSocket: ws.WebSocket,
    reconnectDelayMs: { min: 4, max: 40 },
    random: () => 0,
    ...options,
  });
  const events: ConnectionEvent[] = [];
  client.on('connection', (event) => events.push(event));
  const seenCounts: InboxCounts[] = [];
  client.on('counts', (c) => seenCounts.push(c));
  return { client, calls: http.calls, sockets: ws.sockets, events, seenCounts };
}

const frame = (seq: number, kind: InboxFrame['kind'], unread: number, it?: InboxItem): InboxFrame => ({
  seq,
  kind,
  counts: counts(unread),
  ...(it ? { item: it } : {}),
});

const READ_HEADERS = { Accept: 'application/json', Authorization: `Bearer ${TOKEN}` };
const WRITE_HEADERS = { ...READ_HEADERS, 'Content-Type': 'application/json' };

describe('HeraldInbox over HTTP', () => {
  it('feed: GET /v1/inbox/feed with the query, the token, no body; counts taken from the answer', async () => {
    const { client, calls, seenCounts } = setup(() => ({ ...page(7, [item('inb_1')]), nextCursor: 'inb_1' }));
    const result = await client.feed({
      status: 'unread',
      archived: 'include',
      category: 'orders & more',
      limit: 10,
      cursor: 'inb_0',
    });
    expect(calls).toEqual([
      {
        url: `${BASE}/v1/inbox/feed?status=unread&archived=include&category=orders+%26+more&limit=10&cursor=inb_0`,
        method: 'GET',
        headers: READ_HEADERS,
        body: undefined,
        keepalive: undefined,
      },
    ]);
    expect(result.items.map((i) => i.id)).toEqual(['inb_1']);
    expect(result.nextCursor).toBe('inb_1');
    expect(seenCounts).toEqual([counts(1)]);
    expect(client.currentCounts).toEqual(counts(1));
  });

  it('feed without a query asks for the bare path, and its seq is where the live connection starts', async () => {
    const { client, calls } = setup(() => page(12));
    await client.feed();
    expect(calls[0]?.url).toBe(`${BASE}/v1/inbox/feed`);
    expect(client.seq).toBe(12);
  });

  it('counts: GET /v1/inbox/counts', async () => {
    const { client, calls, seenCounts } = setup(() => ({ ...counts(3, 8, 2), seq: 4 }));
    expect(await client.counts()).toEqual({ total: 8, unread: 3, unseen: 2, seq: 4 });
    expect(calls).toEqual([
      {
        url: `${BASE}/v1/inbox/counts`,
        method: 'GET',
        headers: READ_HEADERS,
        body: undefined,
        keepalive: undefined,
      },
    ]);
    expect(seenCounts).toEqual([counts(3, 8, 2)]);
  });

  it('mark one item: POST /v1/inbox/items/{id}/{action}, JSON body {}', async () => {
    const { client, calls } = setup(() => ({
      item: item('inb_1', { readAt: 'x' }),
      counts: counts(0),
      seq: 6,
    }));
    const result = await client.mark('inb_1', 'read');
    expect(result.item.readAt).toBe('x');
    await client.mark('inb_1/../x', 'click', { keepalive: true });
    expect(calls).toEqual([
      {
        url: `${BASE}/v1/inbox/items/inb_1/read`,
        method: 'POST',
        headers: WRITE_HEADERS,
        body: '{}',
        keepalive: undefined,
      },
      {
        url: `${BASE}/v1/inbox/items/inb_1%2F..%2Fx/click`,
        method: 'POST',
        headers: WRITE_HEADERS,
        body: '{}',
        keepalive: true,
      },
    ]);
    expect(client.currentCounts).toEqual(counts(0));
  });

  it('mark several items or all of them: POST /v1/inbox/items/batch', async () => {
    const { client, calls } = setup(() => ({ changed: 2, counts: counts(0), seq: 9 }));
    expect(await client.mark(['inb_1', 'inb_2'], 'archive')).toEqual({
      changed: 2,
      counts: counts(0),
      seq: 9,
    });
    await client.mark('all', 'read');
    expect(calls.map(({ url, method, headers, body }) => ({ url, method, headers, body }))).toEqual([
      {
        url: `${BASE}/v1/inbox/items/batch`,
        method: 'POST',
        headers: WRITE_HEADERS,
        body: '{"ids":["inb_1","inb_2"],"action":"archive"}',
      },
      {
        url: `${BASE}/v1/inbox/items/batch`,
        method: 'POST',
        headers: WRITE_HEADERS,
        body: '{"all":true,"action":"read"}',
      },
    ]);
    await expect(client.mark(['inb_1'], 'click' as 'read')).rejects.toThrow(TypeError);
  });

  it('a refusal rejects with the status, code and message of the error envelope', async () => {
    const { client } = setup(() =>
      Response.json(
        { error: { code: 'unauthorized', message: 'the inbox token has expired' } },
        { status: 401 },
      ),
    );
    const error = await client.feed().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeraldInboxError);
    expect(error).toMatchObject({
      status: 401,
      code: 'unauthorized',
      message: 'the inbox token has expired',
    });
    const { client: other } = setup(() => new Response('bad gateway', { status: 502 }));
    await expect(other.counts()).rejects.toMatchObject({ status: 502, code: 'http_502' });
  });

  it('counts only move forward: an answer at an older seq than the counts held is ignored', async () => {
    let answer: unknown = { ...counts(4), seq: 10 };
    const { client, seenCounts } = setup(() => answer);
    await client.counts();
    answer = { ...counts(9), seq: 8 };
    await client.counts();
    expect(client.currentCounts).toEqual(counts(4));
    answer = { ...counts(4), seq: 11 };
    await client.counts(); // newer, same numbers: no event
    expect(seenCounts).toEqual([counts(4)]);
  });
});

describe('HeraldInbox live connection', () => {
  it('connects after the feed with since=<its seq>; frames update counts and raise item events', async () => {
    const { client, sockets, seenCounts, events } = setup(() => page(5));
    await client.feed();
    client.connect();
    client.connect(); // already live: no second socket
    expect(sockets).toHaveLength(1);
    expect(sockets[0]?.url).toBe(`wss://herald.test/v1/inbox/ws?token=tok_abc.def&since=5`);
    sockets[0]?.accept();
    expect(client.connectionState).toBe('open');
    const created: InboxItem[] = [];
    const updated: InboxItem[] = [];
    const deleted: InboxItem[] = [];
    client.on('item.created', (i) => created.push(i));
    client.on('item.updated', (i) => updated.push(i));
    client.on('item.deleted', (i) => deleted.push(i));
    sockets[0]?.frame(frame(6, 'item.created', 2, item('inb_2')));
    sockets[0]?.frame(frame(7, 'item.updated', 1, item('inb_2', { readAt: 'now' })));
    sockets[0]?.frame(frame(8, 'item.deleted', 1, item('inb_1')));
    expect(created.map((i) => i.id)).toEqual(['inb_2']);
    expect(updated.map((i) => i.readAt)).toEqual(['now']);
    expect(deleted.map((i) => i.id)).toEqual(['inb_1']);
    expect(seenCounts).toEqual([counts(1), counts(2), counts(1)]);
    expect(client.currentCounts).toEqual(counts(1));
    expect(client.seq).toBe(8);
    expect(events.map((e) => e.state)).toEqual(['connecting', 'open']);
  });

  it('a frame at or below the last seq seen is ignored (a replay overlap), and so is anything not a frame', () => {
    const { client, sockets, seenCounts } = setup();
    client.connect();
    expect(sockets[0]?.url).toBe(`wss://herald.test/v1/inbox/ws?token=tok_abc.def`);
    sockets[0]?.accept();
    const created: string[] = [];
    client.on('item.created', (i) => created.push(i.id));
    sockets[0]?.frame(frame(10, 'item.created', 3, item('inb_10')));
    sockets[0]?.frame(frame(10, 'item.created', 7, item('inb_10')));
    sockets[0]?.frame(frame(9, 'item.created', 8, item('inb_9')));
    sockets[0]?.frame('pong');
    sockets[0]?.frame('not json');
    sockets[0]?.frame(JSON.stringify({ seq: 11, kind: 'item.exploded', counts: counts(9) }));
    sockets[0]?.frame(JSON.stringify({ seq: 12, kind: 'item.created' }));
    expect(created).toEqual(['inb_10']);
    expect(seenCounts).toEqual([counts(3)]);
    expect(client.seq).toBe(10);
  });

  it('counts from a frame do not go back to an older answer, nor an answer to an older frame', async () => {
    const { client, sockets } = setup(() => ({ item: item('inb_1'), counts: counts(5), seq: 3 }));
    client.connect();
    sockets[0]?.accept();
    sockets[0]?.frame(frame(4, 'item.created', 6, item('inb_4')));
    await client.mark('inb_1', 'read'); // answered at seq 3: older than the frame
    expect(client.currentCounts).toEqual(counts(6));
  });

  it('reconnects with backoff and resumes with since = the last seq seen', async () => {
    const { client, sockets, events } = setup();
    client.connect();
    sockets[0]?.accept();
    sockets[0]?.frame(frame(41, 'item.created', 1, item('inb_41')));
    sockets[0]?.frame(frame(42, 'item.updated', 0, item('inb_41', { readAt: 'now' })));
    sockets[0]?.drop(1006);
    expect(events.at(-1)).toMatchObject({ state: 'waiting', delayMs: 2, code: 1006 });
    await vi.waitFor(() => expect(sockets).toHaveLength(2));
    expect(sockets[1]?.url).toBe(`wss://herald.test/v1/inbox/ws?token=tok_abc.def&since=42`);
    sockets[1]?.accept();
    sockets[1]?.frame(frame(42, 'item.updated', 5, item('inb_41'))); // replayed again: ignored
    sockets[1]?.frame(frame(43, 'item.created', 1, item('inb_43')));
    expect(client.currentCounts).toEqual(counts(1));
    expect(client.seq).toBe(43);
  });

  it('the delay doubles from the minimum to the cap while attempts fail, and starts again after a message', async () => {
    const { client, sockets, events } = setup(() => ({ ...counts(0), seq: 1 }), {
      reconnectDelayMs: { min: 2, max: 8 },
      random: () => 0.999_999,
    });
    client.connect();
    for (let attempt = 1; attempt <= 4; attempt++) {
      sockets.at(-1)?.drop(1006); // never opened: the client asks /counts (200), then waits
      await vi.waitFor(() => expect(sockets).toHaveLength(attempt + 1));
    }
    const delays = events.filter((e) => e.state === 'waiting').map((e) => e.delayMs);
    expect(delays).toEqual([2, 4, 8, 8]);
    sockets.at(-1)?.accept();
    sockets.at(-1)?.frame(frame(2, 'item.created', 1, item('inb_2')));
    sockets.at(-1)?.drop(1001);
    expect(events.at(-1)).toMatchObject({ state: 'waiting', delayMs: 2 });
    client.close();
  });

  it('a connection that never opens and whose token /counts refuses stops trying (unauthorized)', async () => {
    const { client, sockets, events, calls } = setup(() =>
      Response.json({ error: { code: 'unauthorized', message: 'expired' } }, { status: 401 }),
    );
    client.connect();
    sockets[0]?.drop(1006);
    await vi.waitFor(() => expect(client.connectionState).toBe('unauthorized'));
    expect(calls.map((c) => c.url)).toEqual([`${BASE}/v1/inbox/counts`]);
    await new Promise((r) => setTimeout(r, 30));
    expect(sockets).toHaveLength(1);
    expect(events.map((e) => e.state)).toEqual(['connecting', 'unauthorized']);
    client.setToken('tok_new');
    expect(sockets).toHaveLength(2);
    expect(sockets[1]?.url).toBe(`wss://herald.test/v1/inbox/ws?token=tok_new`);
  });

  it('a close code refusing the token stops at once; close() stops for good', async () => {
    const { client, sockets } = setup();
    client.connect();
    sockets[0]?.accept();
    sockets[0]?.drop(4401);
    expect(client.connectionState).toBe('unauthorized');
    const second = setup();
    second.client.connect();
    second.sockets[0]?.accept();
    second.client.close();
    expect(second.sockets[0]?.closedWith).toEqual({ code: 1000, reason: 'client closed' });
    second.sockets[0]?.drop(1000); // late event of the detached socket: ignored
    await new Promise((r) => setTimeout(r, 30));
    expect(second.sockets).toHaveLength(1);
    expect(second.client.connectionState).toBe('closed');
  });

  it('reset refetches the last first-page query and hands over the fresh page', async () => {
    let served = page(3, [item('inb_old')]);
    const { client, sockets, calls } = setup(() => served);
    await client.feed({ status: 'unread', limit: 5 });
    await client.feed({ status: 'unread', limit: 5, cursor: 'inb_old' }); // a later page: not what reset refetches
    client.connect();
    sockets[0]?.accept();
    served = page(20, [item('inb_new')], 4);
    const resets: { page: FeedPage; seq: number }[] = [];
    client.on('reset', (fresh, f) => resets.push({ page: fresh, seq: f.seq }));
    sockets[0]?.frame(frame(19, 'reset', 4));
    await vi.waitFor(() => expect(resets).toHaveLength(1));
    expect(calls.at(-1)?.url).toBe(`${BASE}/v1/inbox/feed?status=unread&limit=5`);
    expect(resets[0]?.page.items.map((i) => i.id)).toEqual(['inb_new']);
    expect(resets[0]?.seq).toBe(19);
    expect(client.seq).toBe(19); // frames after the reset keep coming in order
    expect(client.currentCounts).toEqual(counts(4));
  });

  it('a failed refetch after reset is reported on `error`', async () => {
    const { client, sockets } = setup(() => new Response('down', { status: 503 }));
    client.connect();
    sockets[0]?.accept();
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    sockets[0]?.frame(frame(1, 'reset', 0));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ status: 503 });
  });

  it('pings on its interval; an answered ping keeps the connection, an unanswered one replaces it', async () => {
    const { client, sockets } = setup(undefined, { pingIntervalMs: 20, pongTimeoutMs: 300 });
    client.connect();
    sockets[0]?.accept();
    sockets[0]?.frame(frame(3, 'item.created', 1, item('inb_3')));
    await vi.waitFor(() => expect(sockets[0]?.sent).toContain('ping'), { interval: 2 });
    sockets[0]?.frame('pong');
    // answered: still the same socket a few pings later
    await new Promise((r) => setTimeout(r, 100));
    sockets[0]?.frame('pong');
    expect(sockets).toHaveLength(1);
    expect(sockets[0]?.sent.filter((s) => s === 'ping').length).toBeGreaterThan(1);
    // no more answers: the pong timeout closes it and a new socket resumes after seq 3
    await vi.waitFor(() => expect(sockets).toHaveLength(2), { timeout: 1000 });
    expect(sockets[0]?.closedWith?.code).toBe(1000);
    expect(sockets[1]?.url).toContain('since=3');
    client.close();
  });

  it('a throwing handler does not stop the other handlers or the stream', () => {
    const { client, sockets } = setup();
    const queued = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation(() => undefined);
    try {
      client.on('item.created', () => {
        throw new Error('boom');
      });
      const seen: string[] = [];
      client.on('item.created', (i) => seen.push(i.id));
      client.connect();
      sockets[0]?.accept();
      sockets[0]?.frame(frame(1, 'item.created', 1, item('inb_1')));
      sockets[0]?.frame(frame(2, 'item.created', 2, item('inb_2')));
      expect(seen).toEqual(['inb_1', 'inb_2']);
      expect(queued).toHaveBeenCalledTimes(2);
    } finally {
      queued.mockRestore();
    }
  });

  it('on() returns the unsubscribe function', () => {
    const { client, sockets } = setup();
    const seen: string[] = [];
    const stop = client.on('item.created', (i) => seen.push(i.id));
    client.connect();
    sockets[0]?.accept();
    sockets[0]?.frame(frame(1, 'item.created', 1, item('inb_1')));
    stop();
    sockets[0]?.frame(frame(2, 'item.created', 1, item('inb_2')));
    expect(seen).toEqual(['inb_1']);
  });

  it('http base URLs connect with ws:', () => {
    const { sockets, client } = setup(undefined, { baseUrl: 'http://127.0.0.1:8787' });
    client.connect();
    expect(sockets[0]?.url).toBe('ws://127.0.0.1:8787/v1/inbox/ws?token=tok_abc.def');
  });
});

describe('inbox asset routes', () => {
  const env = (ENVIRONMENT: string | undefined) => ({ ENVIRONMENT }) as unknown as Env;

  it('GET /inbox.js serves the bundle as JavaScript, cacheable, with an ETag honoured by If-None-Match', async () => {
    const res = await inboxAssetRoutes.request('/inbox.js', {}, env('production'));
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/javascript; charset=utf-8');
    expect(res.headers.get('Cache-Control')).toBe('public, max-age=300');
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    const etag = res.headers.get('ETag') ?? '';
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{24}"$/);
    expect(await res.text()).toBe(INBOX_JS);
    const again = await inboxAssetRoutes.request(
      '/inbox.js',
      { headers: { 'If-None-Match': `"other", W/${etag}` } },
      env('production'),
    );
    expect(again.status).toBe(304);
    expect(again.headers.get('ETag')).toBe(etag);
    expect(await again.text()).toBe('');
  });

  it('the bundle defines the element and exports the client', () => {
    expect(INBOX_JS).toContain('customElements.define("herald-inbox"');
    expect(INBOX_JS).toMatch(/export\s*\{[^}]*as HeraldInbox\b/);
  });

  it('GET /inbox/demo is a 404 envelope outside development', async () => {
    for (const environment of ['production', 'staging', 'test', undefined]) {
      const res = await inboxAssetRoutes.request('/inbox/demo?token=t', {}, env(environment));
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: 'not_found', message: 'no route for GET /inbox/demo' },
      });
    }
  });

  it('GET /inbox/demo in development: the element with the token escaped, the script from /inbox.js, a strict CSP', async () => {
    const token = '"><script>alert(1)</script>&';
    const res = await inboxAssetRoutes.request(
      `http://localhost:8787/inbox/demo?token=${encodeURIComponent(token)}`,
      {},
      env('development'),
    );
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('<script type="module" src="/inbox.js"></script>');
    expect(body).toContain('<herald-inbox token="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;"');
    expect(body).not.toContain('<script>alert(1)');
    const csp = res.headers.get('Content-Security-Policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self' ws://localhost:8787");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    const missing = await inboxAssetRoutes.request('/inbox/demo', {}, env('development'));
    expect(missing.status).toBe(422);
  });
});
