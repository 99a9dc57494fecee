// The headless in-app inbox client: typed calls to Herald's /v1/inbox routes and a live
// connection that resumes where it stopped. Framework-free; browser APIs only (fetch, WebSocket).
// Bundled for browsers by scripts/build-inbox-client.mjs with element.ts.
import type {
  BatchAction,
  BatchResult,
  ConnectionEvent,
  ConnectionState,
  CountsResult,
  FeedPage,
  FeedQuery,
  FetchLike,
  HeraldInboxOptions,
  InboxCounts,
  InboxEvent,
  InboxEventMap,
  InboxFrame,
  ItemAction,
  ItemResult,
  WebSocketConstructor,
  WebSocketLike,
} from './types';

export type * from './types';

/** A refused call: the HTTP status and the server's error code and message. */
export class HeraldInboxError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HeraldInboxError';
  }
}

const FRAME_KINDS = new Set(['item.created', 'item.updated', 'item.deleted', 'reset']);
/** Close codes a server uses to refuse the token: no point retrying with it. */
const REFUSED_CODES = new Set([1008, 4401, 4403]);

async function errorOf(res: Response): Promise<HeraldInboxError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not the JSON envelope: keep the status
  }
  return new HeraldInboxError(res.status, code, message);
}

/** A server frame, or undefined for anything that is not one (ignored). */
function parseFrame(data: unknown): InboxFrame | undefined {
  if (typeof data !== 'string') return undefined;
  let frame: unknown;
  try {
    frame = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof frame !== 'object' || frame === null) return undefined;
  const { seq, kind, counts } = frame as Partial<InboxFrame>;
  if (typeof seq !== 'number' || typeof kind !== 'string' || !FRAME_KINDS.has(kind)) return undefined;
  if (typeof counts !== 'object' || counts === null) return undefined;
  return frame as InboxFrame;
}

function isRefusal(error: unknown): boolean {
  return error instanceof HeraldInboxError && (error.status === 401 || error.status === 403);
}

/**
 * `new HeraldInbox({ baseUrl, token })`: `feed`, `counts`, `mark`, and `connect()` for live
 * updates (`on('item.created', …)`). Counts always come from the server: the newest (highest seq)
 * counts seen in an answer or a frame.
 */
export class HeraldInbox {
  readonly baseUrl: string;
  #token: string;
  readonly #fetch: FetchLike;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #random: () => number;
  readonly #handlers = new Map<InboxEvent, Set<(...args: never[]) => void>>();

  #counts: InboxCounts | null = null;
  #countsSeq = Number.NEGATIVE_INFINITY;
  /** The last frame seq processed (or the first feed's seq before any frame): `since` on (re)connect. */
  #seq: number | null = null;
  /** The query of the last first page fetched, refetched on `reset`. */
  #lastQuery: FeedQuery = {};

  #live = false;
  #socket: WebSocketLike | null = null;
  #state: ConnectionState = 'closed';
  #attempt = 0;
  #opened = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: HeraldInboxOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    // Called bare: a browser's fetch refuses to run with another `this`.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#WebSocket =
      options.WebSocket ??
      ((globalThis as { WebSocket?: unknown }).WebSocket as WebSocketConstructor | undefined);
    this.#pingIntervalMs = options.pingIntervalMs ?? 30_000;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? 10_000;
    this.#minDelayMs = options.reconnectDelayMs?.min ?? 1_000;
    this.#maxDelayMs = Math.max(this.#minDelayMs, options.reconnectDelayMs?.max ?? 30_000);
    this.#random = options.random ?? Math.random;
  }

  /** The newest counts the server gave, or null before the first answer or frame. */
  get currentCounts(): InboxCounts | null {
    return this.#counts ? { ...this.#counts } : null;
  }

  /** The seq the next connection resumes from (`since`), or null when nothing was seen yet. */
  get seq(): number | null {
    return this.#seq;
  }

  get connectionState(): ConnectionState {
    return this.#state;
  }

  // ---- events ----

  /** Subscribes; returns the function that unsubscribes. */
  on<E extends InboxEvent>(event: E, handler: InboxEventMap[E]): () => void {
    let set = this.#handlers.get(event);
    if (!set) {
      set = new Set();
      this.#handlers.set(event, set);
    }
    set.add(handler as (...args: never[]) => void);
    return () => this.off(event, handler);
  }

  off<E extends InboxEvent>(event: E, handler: InboxEventMap[E]): void {
    this.#handlers.get(event)?.delete(handler as (...args: never[]) => void);
  }

  #emit<E extends InboxEvent>(event: E, ...args: Parameters<InboxEventMap[E]>): void {
    for (const handler of [...(this.#handlers.get(event) ?? [])]) {
      try {
        (handler as unknown as (...a: Parameters<InboxEventMap[E]>) => void)(...args);
      } catch (error) {
        // A failing handler must not stop the others or the stream: report it outside.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  // ---- HTTP ----

  async #request<T>(method: 'GET' | 'POST', path: string, body?: unknown, keepalive?: boolean): Promise<T> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      Authorization: `Bearer ${this.#token}`,
    };
    // `keepalive` is in the browser's RequestInit (not in every runtime's typing).
    const init: RequestInit & { keepalive?: boolean } = { method, headers };
    if (method === 'POST') {
      // Herald takes POST bodies as JSON only (a POST without one is a 415).
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body ?? {});
    }
    if (keepalive) init.keepalive = true;
    const res = await this.#fetch(`${this.baseUrl}${path}`, init);
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as T;
  }

  /** Takes counts from the server when they are at least as new as the ones held. */
  #takeCounts(counts: InboxCounts, seq: number): void {
    if (seq < this.#countsSeq) return;
    this.#countsSeq = seq;
    const next = { total: counts.total, unread: counts.unread, unseen: counts.unseen };
    const previous = this.#counts;
    this.#counts = next;
    if (
      previous?.total !== next.total ||
      previous.unread !== next.unread ||
      previous.unseen !== next.unseen
    ) {
      this.#emit('counts', { ...next });
    }
  }

  /** `GET /v1/inbox/feed`: a page of items, newest first; pass `nextCursor` back as `cursor` for the next. */
  async feed(query: FeedQuery = {}): Promise<FeedPage> {
    const params = new URLSearchParams();
    for (const key of ['status', 'archived', 'category', 'limit', 'cursor'] as const) {
      const value = query[key];
      if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
    }
    const search = params.toString();
    const page = await this.#request<FeedPage>('GET', `/v1/inbox/feed${search ? `?${search}` : ''}`);
    if (query.cursor === undefined) {
      this.#lastQuery = { ...query };
      // Before any frame, the live connection starts after this snapshot.
      if (this.#seq === null) this.#seq = page.seq;
    }
    this.#takeCounts(page.counts, page.seq);
    return page;
  }

  /** `GET /v1/inbox/counts`. */
  async counts(): Promise<CountsResult> {
    const result = await this.#request<CountsResult>('GET', '/v1/inbox/counts');
    this.#takeCounts(result, result.seq);
    return result;
  }

  /**
   * Marks one item (`POST /v1/inbox/items/{id}/{action}`), or several (`ids`) or every item
   * (`'all'`) in one `POST /v1/inbox/items/batch`. `keepalive` lets the request outlive the page
   * (a click that navigates away).
   */
  mark(id: string, action: ItemAction, options?: { keepalive?: boolean }): Promise<ItemResult>;
  mark(
    ids: readonly string[] | 'all',
    action: BatchAction,
    options?: { keepalive?: boolean },
  ): Promise<BatchResult>;
  async mark(
    target: string | readonly string[],
    action: ItemAction,
    options: { keepalive?: boolean } = {},
  ): Promise<ItemResult | BatchResult> {
    if (typeof target === 'string' && target !== 'all') {
      const path = `/v1/inbox/items/${encodeURIComponent(target)}/${action}`;
      const result = await this.#request<ItemResult>('POST', path, undefined, options.keepalive);
      this.#takeCounts(result.counts, result.seq);
      return result;
    }
    if (action === 'click') throw new TypeError('click marks one item, not a batch');
    const body = target === 'all' ? { all: true, action } : { ids: [...target], action };
    const result = await this.#request<BatchResult>('POST', '/v1/inbox/items/batch', body, options.keepalive);
    this.#takeCounts(result.counts, result.seq);
    return result;
  }

  /** Replaces the token (an expired one was refused); a live connection reconnects with it. */
  setToken(token: string): void {
    this.#token = token;
    if (!this.#live && this.#state !== 'unauthorized') return;
    this.#live = true;
    this.#attempt = 0;
    this.#dropSocket();
    this.#open();
  }

  // ---- the live connection ----

  /** Opens the live connection (no-op when it is already live); it reconnects until `close()`. */
  connect(): void {
    if (this.#live) return;
    this.#live = true;
    this.#attempt = 0;
    this.#open();
  }

  /** Closes the live connection for good (until `connect()` again). */
  close(): void {
    this.#live = false;
    this.#dropSocket();
    this.#setState('closed');
  }

  #setState(state: ConnectionState, extra: Partial<ConnectionEvent> = {}): void {
    this.#state = state;
    this.#emit('connection', { state, attempt: this.#attempt, ...extra });
  }

  #socketUrl(): string {
    const url = new URL(`${this.baseUrl}/v1/inbox/ws`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('token', this.#token);
    if (this.#seq !== null) url.searchParams.set('since', String(this.#seq));
    return url.toString();
  }

  #open(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (!this.#WebSocket) throw new Error('no WebSocket in this environment: pass options.WebSocket');
    this.#opened = false;
    this.#setState('connecting');
    const socket = new this.#WebSocket(this.#socketUrl());
    this.#socket = socket;
    socket.onopen = () => {
      if (this.#socket !== socket) return;
      this.#opened = true;
      this.#startPing(socket);
      this.#setState('open');
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#onMessage(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#onClose(event.code);
    };
    socket.onerror = () => {
      // A close event follows; it decides.
    };
  }

  /** Detaches the current socket (its late events are ignored) and stops its timers. */
  #dropSocket(): void {
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#reconnectTimer = undefined;
    this.#pingTimer = undefined;
    this.#pongTimer = undefined;
    const socket = this.#socket;
    this.#socket = null;
    if (!socket) return;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close(1000, 'client closed');
    } catch {
      // already closing
    }
  }

  #startPing(socket: WebSocketLike): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (this.#socket !== socket) return;
      try {
        socket.send('ping');
      } catch {
        return;
      }
      if (this.#pongTimer === undefined) {
        // Nothing back in time: the connection is dead even if the socket does not know yet.
        this.#pongTimer = setTimeout(() => {
          if (this.#socket === socket) this.#onClose(4000);
        }, this.#pongTimeoutMs);
      }
    }, this.#pingIntervalMs);
  }

  #onMessage(data: unknown): void {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    this.#attempt = 0; // the connection works: the next failure starts the backoff afresh
    if (data === 'pong') return;
    const frame = parseFrame(data);
    if (!frame) return;
    if (this.#seq !== null && frame.seq <= this.#seq) return; // already seen (a replay overlap)
    this.#seq = frame.seq;
    this.#takeCounts(frame.counts, frame.seq);
    if (frame.kind === 'reset') {
      void this.#refetch(frame);
      return;
    }
    if (frame.item && typeof frame.item.id === 'string') this.#emit(frame.kind, frame.item, frame);
  }

  async #refetch(frame: InboxFrame): Promise<void> {
    try {
      const { cursor: _cursor, ...query } = this.#lastQuery;
      const page = await this.feed(query);
      this.#emit('reset', page, frame);
    } catch (error) {
      this.#emit('error', error);
    }
  }

  #onClose(code: number): void {
    const wasOpened = this.#opened;
    this.#dropSocket();
    if (!this.#live) return;
    if (REFUSED_CODES.has(code)) {
      this.#live = false;
      this.#setState('unauthorized', { code });
      return;
    }
    if (wasOpened) {
      this.#schedule(code);
      return;
    }
    // Never opened: a browser hides why (1006 for a refused token and an outage alike), so ask
    // the HTTP API, whose 401 says it; any other answer (or none) is worth another attempt.
    this.counts().then(
      () => this.#live && this.#schedule(code),
      (error: unknown) => {
        if (!this.#live) return;
        if (isRefusal(error)) {
          this.#live = false;
          this.#setState('unauthorized', { code });
        } else this.#schedule(code);
      },
    );
  }

  #schedule(code: number): void {
    const ceiling = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** Math.min(this.#attempt, 30));
    // Half fixed, half random: clients dropped together do not all come back together.
    const delayMs = Math.round(ceiling / 2 + (ceiling / 2) * this.#random());
    this.#attempt += 1;
    this.#setState('waiting', { delayMs, code });
    this.#reconnectTimer = setTimeout(() => {
      if (this.#live) this.#open();
    }, delayMs);
  }
}
