import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INBOX_JS } from '../../../src/inbox-client/bundle.generated';
import type { HeraldInboxElement } from '../../../src/inbox-client/element';
import type { InboxCounts, InboxFrame, InboxItem } from '../../../src/inbox-client/types';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/chromium';
import { callStack, freePort, type LocalStack, ROOT, startStack } from '../helpers/local-stack';

/**
 * <herald-inbox> in a real browser (Chromium), twice: against a scripted Herald in this process
 * (the inbox routes and a WebSocket, so each behaviour of the element is driven and checked
 * exactly), and against the local stack started the way a user starts it (`npm start`): a
 * notification sent on the `inapp` channel appears live, and reading it reaches the delivery.
 */

const ARTIFACTS = join(ROOT, 'test-artifacts');
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
if (!hasChromium)
  console.warn(`skipping the inbox browser tests: no Chromium at ${CHROMIUM} (CI installs it)`);

const launch = launchChromium;

/** Console errors (CSP violations among them) and uncaught errors of a page: a working page has none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    // A browser asks for /favicon.ico by itself; neither server has one.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) {
      problems.push(message.text());
    }
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

// ---- the element's state, read through its open shadow root (Playwright's CSS pierces it) ----

const badgeText = (page: Page) =>
  page.$eval('herald-inbox', (host) => {
    const badge = host.shadowRoot?.querySelector<HTMLElement>('[part="badge"]');
    return badge && !badge.hidden ? badge.textContent : '';
  });
const rowTitles = (page: Page) =>
  page.$$eval('herald-inbox li.item .title', (titles) => titles.map((t) => t.textContent));
const connection = (page: Page) => page.$eval('herald-inbox', (host) => host.getAttribute('data-connection'));
const clientSeq = (page: Page) =>
  page.evaluate(() => document.querySelector<HeraldInboxElement>('herald-inbox')?.client?.seq);

// ---- a scripted Herald: the inbox routes and a WebSocket, in memory ----

const TOKEN = 'tok-demo';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A frame from the server (unmasked, one fragment). */
function wsFrame(text: string, opcode = 0x1): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  let head: Buffer;
  if (length < 126) head = Buffer.from([0x80 | opcode, length]);
  else if (length < 65_536) head = Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([head, payload]);
}

/** Reads the browser's (masked) frames as they arrive: text to `onText`; close and ping answered. */
function readFrames(socket: Socket, onText: (text: string) => void): void {
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = (buffer[0] ?? 0) & 0x0f;
      let length = (buffer[1] ?? 0) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + 4 + length) return;
      const mask = buffer.subarray(offset, offset + 4);
      const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length));
      for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
      buffer = buffer.subarray(offset + 4 + length);
      if (opcode === 0x1) onText(payload.toString());
      else if (opcode === 0x8) socket.end(wsFrame('', 0x8));
      else if (opcode === 0x9) socket.write(wsFrame(payload.toString(), 0xa));
    }
  });
}

interface Call {
  method: string;
  path: string;
  body: unknown;
}

interface MarkBody {
  ids?: string[];
  all?: boolean;
  action?: string;
}

/** The demo route's policy, stricter still: no inline style either (the element's sheet is constructed). */
const DEMO_CSP = (host: string) =>
  `default-src 'none'; script-src 'self'; connect-src 'self' ws://${host}; img-src 'self'; style-src 'none'`;

class FakeHerald {
  readonly server: Server;
  readonly calls: Call[] = [];
  readonly sockets = new Set<Socket>();
  readonly wsUrls: string[] = [];
  items: InboxItem[] = [];
  frames: InboxFrame[] = [];
  seq = 100;
  base = '';

  constructor() {
    this.server = createServer((req, res) => void this.#http(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket) => this.#upgrade(req, socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  counts(): InboxCounts {
    const live = this.items.filter((i) => i.archivedAt === null);
    return {
      total: live.length,
      unread: live.filter((i) => i.readAt === null).length,
      unseen: live.filter((i) => i.seenAt === null).length,
    };
  }

  /** A change: the next seq, its frame to every socket and to the log (for replays). */
  change(kind: InboxFrame['kind'], item?: InboxItem): InboxFrame {
    this.seq += 1;
    const frame: InboxFrame = { seq: this.seq, kind, counts: this.counts(), ...(item ? { item } : {}) };
    this.frames.push(frame);
    for (const socket of this.sockets) socket.write(wsFrame(JSON.stringify(frame)));
    return frame;
  }

  add(item: InboxItem): void {
    this.items.unshift(item);
    this.change('item.created', item);
  }

  /** Cuts every live connection, as a network drop would. */
  dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  #upgrade(req: IncomingMessage, socket: Socket): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/v1/inbox/ws' || url.searchParams.get('token') !== TOKEN) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wsUrls.push(`${url.pathname}${url.search}`);
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}${WS_GUID}`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const since = Number(url.searchParams.get('since') ?? this.seq);
    for (const frame of this.frames) if (frame.seq > since) socket.write(wsFrame(JSON.stringify(frame)));
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => this.sockets.delete(socket));
    readFrames(socket, (text) => {
      if (text === 'ping') socket.write(wsFrame('pong'));
    });
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base);
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    if (url.pathname === '/inbox.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript; charset=utf-8' }).end(INBOX_JS);
      return;
    }
    if (url.pathname === '/demo') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': DEMO_CSP(url.host),
      });
      res.end(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>inbox</title>' +
          '<script type="module" src="/inbox.js"></script></head>' +
          `<body><herald-inbox token="${TOKEN}"></herald-inbox></body></html>`,
      );
      return;
    }
    if (!url.pathname.startsWith('/v1/')) {
      res.writeHead(404).end();
      return;
    }
    this.calls.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, body });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      this.#json(res, 401, { error: { code: 'unauthorized', message: 'bad token' } });
      return;
    }
    this.#api(req.method ?? 'GET', url, body, res);
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  #api(method: string, url: URL, body: MarkBody | undefined, res: ServerResponse): void {
    if (method === 'GET' && url.pathname === '/v1/inbox/feed') {
      const live = this.items.filter((i) => i.archivedAt === null);
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const cursor = url.searchParams.get('cursor');
      const start = cursor ? live.findIndex((i) => i.id === cursor) + 1 : 0;
      const items = live.slice(start, start + limit);
      const nextCursor = start + limit < live.length ? (items.at(-1)?.id ?? null) : null;
      this.#json(res, 200, { items, counts: this.counts(), seq: this.seq, nextCursor });
      return;
    }
    if (method === 'GET' && url.pathname === '/v1/inbox/counts') {
      this.#json(res, 200, { ...this.counts(), seq: this.seq });
      return;
    }
    if (method === 'POST' && url.pathname === '/v1/inbox/items/batch' && body?.action) {
      const targets = body.all ? this.items : this.items.filter((i) => body.ids?.includes(i.id));
      for (const item of targets) this.#apply(item, body.action);
      this.#json(res, 200, { changed: targets.length, counts: this.counts(), seq: this.seq });
      return;
    }
    const one = /^\/v1\/inbox\/items\/([^/]+)\/([a-z]+)$/.exec(url.pathname);
    const item = one ? this.items.find((i) => i.id === decodeURIComponent(one[1] ?? '')) : undefined;
    if (method === 'POST' && one && item) {
      this.#apply(item, one[2] ?? '');
      this.#json(res, 200, { item, counts: this.counts(), seq: this.seq });
      return;
    }
    this.#json(res, 404, { error: { code: 'not_found', message: 'no such route' } });
  }

  #apply(item: InboxItem, action: string): void {
    const now = new Date().toISOString();
    if (action === 'seen') item.seenAt ??= now;
    if (action === 'read' || action === 'click') {
      item.seenAt ??= now;
      item.readAt ??= now;
    }
    if (action === 'unread') item.readAt = null;
    if (action === 'archive') item.archivedAt = now;
    if (action === 'unarchive') item.archivedAt = null;
    this.change('item.updated', { ...item });
  }
}

let counter = 0;
/** An item, newer than every one made before it; read and seen unless told otherwise. */
function item(extra: Partial<InboxItem> = {}): InboxItem {
  counter += 1;
  return {
    id: `inb_${String(counter).padStart(4, '0')}`,
    deliveryId: `dlv_${counter}`,
    notificationId: `ntf_${counter}`,
    type: 'new_comment',
    category: 'social',
    title: `Item ${counter}`,
    body: `Body ${counter}`,
    url: null,
    avatar: null,
    actions: [],
    data: {},
    createdAt: new Date(Date.now() - (1000 - counter) * 60_000).toISOString(),
    seenAt: '2026-01-01T00:00:00.000Z',
    readAt: '2026-01-01T00:00:00.000Z',
    archivedAt: null,
    ...extra,
  };
}

const unread = { readAt: null, seenAt: null };

describe.skipIf(!hasChromium)('<herald-inbox> in Chromium against a scripted Herald', () => {
  let herald: FakeHerald;
  let browser: Browser | undefined;
  let page: Page;
  let problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    herald = new FakeHerald();
    for (let i = 0; i < 22; i++) herald.items.unshift(item());
    // the newest: unread and unseen, with hostile text
    herald.items.unshift(item({ title: '<img src=x onerror="window.pwned=1">', ...unread }));
    await herald.listen();
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    problems = watchProblems(page);
  });

  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  it('loads under a strict CSP, shows the unread count, and goes live after the first page', async () => {
    await page.goto(`${herald.base}/demo`);
    await expect.poll(() => connection(page)).toBe('open');
    expect(await badgeText(page)).toBe('1');
    expect(herald.calls[0]).toEqual({
      method: 'GET',
      path: '/v1/inbox/feed?status=all&archived=exclude&limit=20',
      body: undefined,
    });
    expect(herald.wsUrls).toEqual([`/v1/inbox/ws?token=${TOKEN}&since=100`]);
    // The styles apply though the page allows no inline style (a constructed stylesheet).
    const bell = 'herald-inbox [part="bell"]';
    expect(await page.$eval(bell, (b) => getComputedStyle(b).borderTopLeftRadius)).toBe('999px');
    expect(await page.$eval(bell, (b) => b.getAttribute('aria-label'))).toBe('Notifications, 1 unread');
    expect(problems).toEqual([]);
  });

  it('a new item arrives live: the badge and its live region say so', async () => {
    herald.add(
      item({ title: 'Ada commented', body: 'Looks good', avatar: 'data:image/gif;base64,R0lGOD', ...unread }),
    );
    await expect.poll(() => badgeText(page)).toBe('2');
    expect(await page.$eval('herald-inbox [role="status"]', (s) => s.textContent)).toBe(
      '2 unread notifications',
    );
  });

  it('opening the panel lists the items (as text, never markup) and marks the shown ones seen', async () => {
    await page.click('herald-inbox [part="bell"]');
    expect(await page.$eval('herald-inbox [part="bell"]', (b) => b.getAttribute('aria-expanded'))).toBe(
      'true',
    );
    const titles = await rowTitles(page);
    expect(titles.slice(0, 2)).toEqual(['Ada commented', '<img src=x onerror="window.pwned=1">']);
    expect(titles).toHaveLength(21); // the first page, and the item that came live
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    // data: is not an http(s) URL: no avatar
    expect(await page.$$eval('herald-inbox li.item img', (imgs) => imgs.length)).toBe(0);
    await expect
      .poll(() => herald.calls.filter((c) => c.path === '/v1/inbox/items/batch').map((c) => c.body))
      .toEqual([{ ids: [herald.items[0]?.id, herald.items[1]?.id], action: 'seen' }]);
    await page.screenshot({ path: join(ARTIFACTS, 'inbox-open.png') });
  });

  it('load more appends the next page by cursor', async () => {
    await page.click('herald-inbox [part="load-more"]');
    await expect.poll(async () => (await rowTitles(page)).length).toBe(24);
    expect(herald.calls.at(-1)?.path).toBe(
      // the first page's cursor: its last item, the 21st now that one more came
      `/v1/inbox/feed?status=all&archived=exclude&limit=20&cursor=${herald.items[20]?.id}`,
    );
    expect(await page.$eval('herald-inbox [part="load-more"]', (b) => (b as HTMLElement).hidden)).toBe(true);
  });

  it('clicking an unread item without a URL marks it read; the badge follows the server', async () => {
    const id = herald.items[0]?.id;
    await page.click(`herald-inbox li.item[data-id="${id}"] button.open`);
    await expect.poll(() => badgeText(page)).toBe('1');
    expect(herald.calls.at(-1)).toEqual({ method: 'POST', path: `/v1/inbox/items/${id}/read`, body: {} });
    const row = `herald-inbox li.item[data-id="${id}"]`;
    expect(await page.$eval(row, (li) => li.classList.contains('unread'))).toBe(false);
  });

  it('archive removes the item; mark all read empties the badge', async () => {
    const id = herald.items[2]?.id;
    await page.click(`herald-inbox li.item[data-id="${id}"] button.archive`);
    await expect.poll(async () => (await rowTitles(page)).length).toBe(23);
    expect(herald.calls.at(-1)).toMatchObject({ method: 'POST', path: `/v1/inbox/items/${id}/archive` });
    await page.click('herald-inbox [part="mark-all"]');
    await expect.poll(() => badgeText(page)).toBe('');
    expect(herald.calls.at(-1)).toMatchObject({
      path: '/v1/inbox/items/batch',
      body: { all: true, action: 'read' },
    });
  });

  it('after a dropped connection it reconnects with since = the last seq and gets what it missed', async () => {
    await expect.poll(() => clientSeq(page)).toBe(herald.seq);
    const before = herald.wsUrls.length;
    const lastSeq = herald.seq;
    herald.dropAll();
    herald.add(item({ title: 'While you were away', ...unread }));
    await expect.poll(() => herald.wsUrls.length, { timeout: 15_000 }).toBe(before + 1);
    expect(herald.wsUrls.at(-1)).toBe(`/v1/inbox/ws?token=${TOKEN}&since=${lastSeq}`);
    await expect.poll(() => rowTitles(page)).toContain('While you were away');
    await expect.poll(() => badgeText(page)).toBe('1');
  });

  it('an item with a URL records the click and hands the navigation to a listener that may take it', async () => {
    const actions = [
      { label: 'Track', url: 'https://shop.example/track/1' },
      { label: 'Bad', url: 'javascript:alert(1)' },
    ];
    herald.add(
      item({ title: 'Your order shipped', url: 'https://shop.example/orders/1', actions, ...unread }),
    );
    await expect.poll(() => rowTitles(page)).toContain('Your order shipped');
    const id = herald.items[0]?.id;
    const links = await page.$$eval(`herald-inbox li.item[data-id="${id}"] a[part="action"]`, (as) =>
      as.map((a) => [a.textContent, a.getAttribute('href')]),
    );
    expect(links).toEqual([['Track', 'https://shop.example/track/1']]);
    await page.evaluate(() => {
      document.querySelector('herald-inbox')?.addEventListener('herald-inbox:navigate', (event) => {
        event.preventDefault();
        (window as { navigatedTo?: string }).navigatedTo = (event as CustomEvent<{ url: string }>).detail.url;
      });
    });
    await page.click(`herald-inbox li.item[data-id="${id}"] button.open`);
    await expect
      .poll(() => page.evaluate(() => (window as { navigatedTo?: string }).navigatedTo))
      .toBe('https://shop.example/orders/1');
    expect(herald.calls.at(-1)).toMatchObject({ method: 'POST', path: `/v1/inbox/items/${id}/click` });
    // a click is a read too; "While you were away" is still unread
    await expect.poll(() => badgeText(page)).toBe('1');
  });

  it('Escape closes the panel and gives the focus back to the bell; the dark theme restyles it', async () => {
    await page.keyboard.press('Escape');
    expect(await page.$eval('herald-inbox [part="panel"]', (p) => (p as HTMLElement).hidden)).toBe(true);
    const focused = await page.evaluate(
      () => document.querySelector('herald-inbox')?.shadowRoot?.activeElement?.getAttribute('part') ?? null,
    );
    expect(focused).toBe('bell');
    const background = () =>
      page.$eval('herald-inbox [part="bell"]', (b) => getComputedStyle(b).backgroundColor);
    expect(await background()).toBe('rgb(255, 255, 255)');
    await page.$eval('herald-inbox', (host) => host.setAttribute('theme', 'dark'));
    expect(await background()).toBe('rgb(15, 23, 42)');
    expect(problems).toEqual([]);
  });
});

// ---- against the local stack ----

interface Accepted {
  id: string;
  deliveries: { id: string; channel: string; status: string }[];
}
interface NotificationBody {
  deliveries: { id: string; channel: string; status: string }[];
}

describe.skipIf(!hasChromium)('<herald-inbox> in Chromium against the local stack (npm start)', () => {
  let stack: LocalStack | undefined;
  let browser: Browser | undefined;
  let page: Page;

  const herald = <T>(method: string, path: string, body?: unknown) =>
    callStack<T>(stack as LocalStack, method, path, body);

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack(await freePort(8798));
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 900, height: 800 } });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('an inapp notification appears live; reading it clears the badge and the delivery is opened', async () => {
    const userId = `inbox_${RUN}`;
    const { token } = await herald<{ token: string }>('POST', '/v1/inbox/tokens', { userId });
    const problems = watchProblems(page);
    await page.goto(`${stack?.base}/inbox/demo?token=${encodeURIComponent(token)}`);
    await expect.poll(() => connection(page), { timeout: 15_000 }).toBe('open');
    expect(await badgeText(page)).toBe('');

    // A type with an inapp template (templates/<type>/inapp), sent on that channel only.
    const type = existsSync(join(ROOT, 'templates', 'new_comment', 'inapp'))
      ? 'new_comment'
      : 'order_shipped';
    const accepted = await herald<Accepted>('POST', '/v1/notifications', {
      type,
      recipients: [userId],
      channels: ['inapp'],
      data: {
        author: 'Ada',
        subject: 'the inbox',
        excerpt: 'Looks good',
        order_id: 'A-1001',
        carrier: 'DHL',
      },
    });
    const delivery = accepted.deliveries.find((d) => d.channel === 'inapp');
    expect(delivery, JSON.stringify(accepted)).toBeDefined();

    await expect.poll(() => badgeText(page), { timeout: 30_000 }).toBe('1');
    await page.click('herald-inbox [part="bell"]');
    await expect.poll(async () => (await rowTitles(page)).length).toBe(1);
    const shown = await page.evaluate(async () => {
      const host = document.querySelector<HeraldInboxElement>('herald-inbox');
      // A URL would navigate away: stay on the page (the click is recorded all the same).
      host?.addEventListener('herald-inbox:navigate', (e) => e.preventDefault());
      const first = (await host?.client?.feed())?.items[0];
      return { baseUrl: host?.client?.baseUrl, url: first?.url ?? null, deliveryId: first?.deliveryId };
    });
    expect(shown).toMatchObject({ baseUrl: stack?.base, deliveryId: delivery?.id });
    await page.screenshot({ path: join(ARTIFACTS, 'inbox-stack.png') });
    await page.click('herald-inbox li.item button.open');

    // Read: no count on the badge, and the counts the server sent say 0.
    await expect.poll(() => badgeText(page)).toBe('');
    await expect
      .poll(() =>
        page.evaluate(
          () => document.querySelector<HeraldInboxElement>('herald-inbox')?.client?.currentCounts?.unread,
        ),
      )
      .toBe(0);
    expect(await page.$eval('herald-inbox [part="bell"]', (b) => b.getAttribute('aria-label'))).toBe(
      'Notifications',
    );

    // The read reached the delivery: opened (clicked, had the item a URL: a click is a read too).
    const status = async () =>
      (await herald<NotificationBody>('GET', `/v1/notifications/${accepted.id}`)).deliveries.find(
        (d) => d.id === delivery?.id,
      )?.status;
    await expect.poll(status, { timeout: 15_000 }).toBe(shown.url ? 'clicked' : 'opened');
    expect(problems).toEqual([]);
  });
});
