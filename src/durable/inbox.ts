import { DurableObject } from 'cloudflare:workers';
import {
  addCounts,
  applyAction,
  type BatchAction,
  countsOf,
  DEFAULT_INBOX_MAX_ITEMS,
  type FrameKind,
  type InboxAction,
  type InboxCounts,
  type InboxFrame,
  type InboxItem,
  type ItemState,
  type NewInboxItem,
} from '../domain/inbox';
import {
  allItems,
  appendFrame,
  createSchema,
  deleteItems,
  type FeedQuery,
  feedRows,
  framesAfter,
  type ItemRow,
  insertItem,
  itemByDelivery,
  itemsById,
  type Meta,
  oldestItems,
  readMeta,
  stateOf,
  toItem,
  updateState,
  writeConfig,
} from './inbox-storage';

/** Frames kept per item kept, for a reconnecting socket to replay; older `since` values get `reset`. */
const FRAMES_PER_ITEM = 2;

/** What a mark did: the items it changed (as they are now), the counts and seq after. */
export interface InboxChange {
  changed: { item: InboxItem; action: InboxAction }[];
  /** The named items as they are now, changed or not (none for `all`); a missing id is absent. */
  items: InboxItem[];
  counts: InboxCounts;
  seq: number;
}

export interface FeedPage {
  items: InboxItem[];
  counts: InboxCounts;
  seq: number;
  /** The id to pass as `before` for the next page, or null. */
  next: string | null;
}

/** The inbox as a Worker calls it (RPC): each method of `InboxObject`, awaited. */
export interface InboxRpc {
  append(input: NewInboxItem, maxItems?: number): Promise<ReturnType<InboxObject['append']>>;
  feed(query: FeedQuery): Promise<FeedPage>;
  counts(): Promise<{ counts: InboxCounts; seq: number }>;
  mark(
    target: { ids: readonly string[] } | { all: true },
    action: InboxAction,
    nowMs: number,
  ): Promise<InboxChange>;
  remove(id: string): Promise<boolean>;
  exportItems(): Promise<InboxItem[]>;
  items(ids: readonly string[]): Promise<InboxItem[]>;
  erase(): Promise<number>;
  fetch(request: Request): Promise<Response>;
}

/** A message a client may send on its socket. */
interface SocketMark {
  op: 'mark';
  ids: string[];
  action: BatchAction;
}

/**
 * One per user id (`idFromName(userId)`): the user's in-app inbox and the WebSockets that watch it.
 * Every change (an append, a mark, a removal, a trim) runs in one storage transaction that changes
 * the items and logs the change's frame, which carries the sequence number and the counts after
 * it, so counts never drift from the items and a reconnect with `since` replays exactly what it
 * missed. Sockets
 * use the hibernation API: an idle inbox holds no memory and costs nothing; `ping` is answered
 * `pong` by the runtime without waking the object.
 *
 * What a socket's `mark` did is reported through `onSocketMarks` (the Worker's subclass records
 * the delivery events it implies in D1); the HTTP routes report theirs themselves.
 */
export class InboxObject extends DurableObject<unknown> {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    createSchema(ctx.storage.sql);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
  }

  private get sql(): SqlStorage {
    return this.ctx.storage.sql;
  }

  /**
   * Appends a delivery's item once: a repeat of the same delivery changes nothing. `maxItems` (the
   * Worker's INBOX_MAX_ITEMS): older items are removed past it.
   */
  append(
    input: NewInboxItem,
    maxItems: number = DEFAULT_INBOX_MAX_ITEMS,
  ): { item: InboxItem; created: boolean; counts: InboxCounts; seq: number } {
    const existing = itemByDelivery(this.sql, input.deliveryId);
    if (existing) return { item: toItem(existing), created: false, ...this.meta() };
    const frames: InboxFrame[] = [];
    const result = this.ctx.storage.transactionSync(() => {
      const stored = readMeta(this.sql);
      if (stored.maxItems !== maxItems) writeConfig(this.sql, maxItems);
      const meta = { ...stored, maxItems };
      const row = insertItem(this.sql, input);
      meta.counts = addCounts(meta.counts, countsOf(stateOf(row)));
      meta.size += 1;
      frames.push(this.logFrame(meta, 'item.created', toItem(row)));
      for (const old of oldestItems(this.sql, meta.size - maxItems)) {
        deleteItems(this.sql, [old.id]);
        meta.counts = addCounts(meta.counts, countsOf(stateOf(old)), -1);
        meta.size -= 1;
        frames.push(this.logFrame(meta, 'item.deleted', toItem(old)));
      }
      return { item: toItem(row), created: true, counts: meta.counts, seq: meta.seq };
    });
    this.broadcast(frames);
    return result;
  }

  feed(query: FeedQuery): FeedPage {
    const rows = feedRows(this.sql, { ...query, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return {
      items: page.map(toItem),
      ...this.meta(),
      next: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
    };
  }

  counts(): { counts: InboxCounts; seq: number } {
    return this.meta();
  }

  /** Applies an action to these items (`all`: every item); items it does not change send nothing. */
  mark(target: { ids: readonly string[] } | { all: true }, action: InboxAction, nowMs: number): InboxChange {
    const rows = 'all' in target ? allItems(this.sql) : itemsById(this.sql, target.ids);
    const frames: InboxFrame[] = [];
    const result = this.ctx.storage.transactionSync(() => {
      const meta = readMeta(this.sql);
      const changed: InboxChange['changed'] = [];
      const items: InboxItem[] = [];
      for (const row of rows) {
        const next = applyTo(row, action, nowMs);
        if (!next) {
          if (!('all' in target)) items.push(toItem(row));
          continue;
        }
        updateState(this.sql, row.id, next);
        meta.counts = addCounts(addCounts(meta.counts, countsOf(stateOf(row)), -1), countsOf(next));
        const item = toItem({ ...row, ...rowState(next) });
        changed.push({ item, action });
        if (!('all' in target)) items.push(item);
        frames.push(this.logFrame(meta, 'item.updated', item));
      }
      return { changed, items, counts: meta.counts, seq: meta.seq };
    });
    this.broadcast(frames);
    return result;
  }

  /** Removes one item (an operator's delete); false when there is none. */
  remove(id: string): boolean {
    const [row] = itemsById(this.sql, [id]);
    if (!row) return false;
    const frames: InboxFrame[] = [];
    this.ctx.storage.transactionSync(() => {
      const meta = readMeta(this.sql);
      deleteItems(this.sql, [row.id]);
      meta.counts = addCounts(meta.counts, countsOf(stateOf(row)), -1);
      meta.size -= 1;
      frames.push(this.logFrame(meta, 'item.deleted', toItem(row)));
    });
    this.broadcast(frames);
    return true;
  }

  /** These items, as they are now (an operator's view of a delivery); missing ids are absent. */
  items(ids: readonly string[]): InboxItem[] {
    return itemsById(this.sql, ids.slice(0, 100)).map(toItem);
  }

  /** Every item, newest first (the user's data export). */
  exportItems(): InboxItem[] {
    return allItems(this.sql).map(toItem);
  }

  /** Erasure: every item and frame goes, sockets are closed; how many items there were. */
  async erase(): Promise<number> {
    const count = allItems(this.sql).length;
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, 'inbox erased');
    await this.ctx.storage.deleteAll();
    createSchema(this.sql);
    return count;
  }

  /** A WebSocket upgrade, authenticated by the Worker; `?since=` replays what the client missed. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('expected a WebSocket upgrade', { status: 426 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const sinceRaw = new URL(request.url).searchParams.get('since');
    const since = sinceRaw !== null && /^\d{1,15}$/.test(sinceRaw) ? Number(sinceRaw) : null;
    if (since !== null) {
      const { seq, counts } = this.meta();
      const missed = since > seq ? null : framesAfter(this.sql, since, seq);
      if (missed === null) server.send(JSON.stringify({ seq, kind: 'reset', counts } satisfies InboxFrame));
      else for (const frame of missed) server.send(frame);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const mark = parseSocketMark(message);
    if (!mark) {
      ws.send(
        JSON.stringify({ error: { code: 'bad_message', message: 'expected { op: "mark", ids, action }' } }),
      );
      return;
    }
    const change = this.mark({ ids: mark.ids }, mark.action, Date.now());
    if (change.changed.length > 0) await this.onSocketMarks(change);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, 'bye');
    } catch {
      // already closed
    }
  }

  /** What a socket's mark changed; the Worker's subclass records the delivery events. */
  protected async onSocketMarks(_change: InboxChange): Promise<void> {}

  private meta(): { counts: InboxCounts; seq: number } {
    const { counts, seq } = readMeta(this.sql);
    return { counts, seq };
  }

  /** Takes the next sequence number in `meta` and logs the change's frame under it. */
  private logFrame(meta: Meta, kind: FrameKind, item: InboxItem): InboxFrame {
    meta.seq += 1;
    const frame: InboxFrame = { seq: meta.seq, kind, item, counts: { ...meta.counts } };
    appendFrame(this.sql, meta.seq, JSON.stringify(frame), meta.size, meta.maxItems * FRAMES_PER_ITEM);
    return frame;
  }

  /** Sends each frame to every socket, after the transaction committed. */
  private broadcast(frames: readonly InboxFrame[]): void {
    if (frames.length === 0) return;
    const texts = frames.map((frame) => JSON.stringify(frame));
    for (const ws of this.ctx.getWebSockets()) {
      for (const text of texts) {
        try {
          ws.send(text);
        } catch {
          // a closing socket: its client reconnects with `since`
        }
      }
    }
  }
}

function applyTo(row: ItemRow, action: InboxAction, nowMs: number): ItemState | null {
  return applyAction(stateOf(row), action, nowMs);
}

function rowState(state: ItemState): Pick<ItemRow, 'seen_at' | 'read_at' | 'archived_at' | 'clicked_at'> {
  return {
    seen_at: state.seenAt,
    read_at: state.readAt,
    archived_at: state.archivedAt,
    clicked_at: state.clickedAt,
  };
}

const SOCKET_ACTIONS: ReadonlySet<string> = new Set(['seen', 'read', 'unread', 'archive', 'unarchive']);
const MAX_SOCKET_IDS = 100;

function parseSocketMark(message: string | ArrayBuffer): SocketMark | null {
  if (typeof message !== 'string' || message.length > 16_384) return null;
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  const mark = value as Partial<SocketMark>;
  if (mark?.op !== 'mark' || typeof mark.action !== 'string' || !SOCKET_ACTIONS.has(mark.action)) return null;
  if (!Array.isArray(mark.ids) || mark.ids.length === 0 || mark.ids.length > MAX_SOCKET_IDS) return null;
  if (!mark.ids.every((id) => typeof id === 'string' && id.length <= 64)) return null;
  return { op: 'mark', ids: mark.ids, action: mark.action as BatchAction };
}
