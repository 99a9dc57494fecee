// The in-app inbox's wire types, exactly as the server sends them (GET /v1/inbox/feed and friends).
// Browser-side only: nothing in src/ but src/inbox-client imports this.

// The item, counts and frame shapes are the server's own (src/domain/inbox.ts, types only: the
// bundle carries none of the server's code).
export type {
  ArchivedFilter as FeedArchived,
  FeedStatus,
  FrameKind,
  InboxButton as InboxAction,
  InboxCounts,
  InboxFrame,
  InboxItem,
} from '../domain/inbox';

import type {
  ArchivedFilter as FeedArchived,
  FeedStatus,
  InboxCounts,
  InboxFrame,
  InboxItem,
} from '../domain/inbox';

/** `GET /v1/inbox/feed` query; every field optional (the server's defaults apply). */
export interface FeedQuery {
  status?: FeedStatus;
  archived?: FeedArchived;
  category?: string;
  limit?: number;
  cursor?: string;
}

export interface FeedPage {
  items: InboxItem[];
  counts: InboxCounts;
  seq: number;
  nextCursor: string | null;
}

/** What one item can be marked (`click` also records the click on the delivery), and a batch. */
export type { BatchAction, InboxAction as ItemAction } from '../domain/inbox';

export interface ItemResult {
  item: InboxItem;
  counts: InboxCounts;
  seq: number;
}

export interface BatchResult {
  changed: number;
  counts: InboxCounts;
  seq: number;
}

export type CountsResult = InboxCounts & { seq: number };

/**
 * The live connection's state: `connecting` (a socket is opening), `open`, `waiting` (closed,
 * reconnecting after `delayMs`), `closed` (by `close()`), `unauthorized` (the token was refused:
 * no more attempts until `setToken`).
 */
export type ConnectionState = 'connecting' | 'open' | 'waiting' | 'closed' | 'unauthorized';

export interface ConnectionEvent {
  state: ConnectionState;
  /** Consecutive failed attempts so far (0 once a connection has carried a message). */
  attempt: number;
  /** For `waiting`: how long until the next attempt. */
  delayMs?: number;
  /** The close code of the socket that ended, when there was one. */
  code?: number;
}

/** Every event `on()` takes, with its handler. */
export interface InboxEventMap {
  'item.created': (item: InboxItem, frame: InboxFrame) => void;
  'item.updated': (item: InboxItem, frame: InboxFrame) => void;
  'item.deleted': (item: InboxItem, frame: InboxFrame) => void;
  /** The server said the client's view is stale; the client refetched the feed (the last first-page query). */
  reset: (page: FeedPage, frame: InboxFrame) => void;
  /** New counts from the server (a frame or an answer with a higher seq), never computed locally. */
  counts: (counts: InboxCounts) => void;
  connection: (event: ConnectionEvent) => void;
  /** A background failure (a refetch after `reset`); calls made by you reject instead. */
  error: (error: unknown) => void;
}

export type InboxEvent = keyof InboxEventMap;

/** The part of the WebSocket API the client uses; the browser's `WebSocket` fits it. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HeraldInboxOptions {
  /** The Herald origin, e.g. `https://herald.example.com` (a trailing slash is ignored). */
  baseUrl: string;
  /** The end user's inbox token (from `POST /v1/inbox/tokens`, minted by your backend). */
  token: string;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  /** Defaults to the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** How often the live connection sends `ping` (default 30 s). */
  pingIntervalMs?: number;
  /** How long a `ping` may go unanswered before the connection counts as dead (default 10 s). */
  pongTimeoutMs?: number;
  /** Reconnect backoff: the first delay and the cap, doubling in between (default 1 s to 30 s). */
  reconnectDelayMs?: { min?: number; max?: number };
  /** 0 ≤ x < 1, for the backoff's jitter (default Math.random). */
  random?: () => number;
}
