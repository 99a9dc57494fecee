// <herald-inbox base-url="https://herald.example.com" token="…" theme="light|dark|auto">: a bell
// with the unread count and a panel of the user's inbox, live. Framework-free custom element in a
// shadow root; built on the headless client (client.ts). Bundled by scripts/build-inbox-client.mjs
// and served by the Worker at /inbox.js.
import { HeraldInbox, HeraldInboxError } from './client';
import { bellIcon, el, itemRow, safeUrl } from './render';
import { STYLES } from './styles';
import type { FeedQuery, InboxCounts, InboxItem } from './types';

export { HeraldInbox, HeraldInboxError } from './client';
export type * from './types';

const PAGE_SIZE = 20;

/** Where this script was loaded from: the default `base-url`. */
function scriptOrigin(): string {
  try {
    return new URL(import.meta.url).origin;
  } catch {
    return location.origin;
  }
}

let sharedSheet: CSSStyleSheet | undefined;

/** A constructed stylesheet where the browser has them (a page's CSP does not block those), else <style>. */
function applyStyles(root: ShadowRoot): void {
  if (
    'adoptedStyleSheets' in root &&
    typeof CSSStyleSheet !== 'undefined' &&
    'replaceSync' in CSSStyleSheet.prototype
  ) {
    if (!sharedSheet) {
      sharedSheet = new CSSStyleSheet();
      sharedSheet.replaceSync(STYLES);
    }
    root.adoptedStyleSheets = [sharedSheet];
    return;
  }
  root.append(el('style', {}, STYLES));
}

function messageOf(error: unknown): string {
  if (error instanceof HeraldInboxError && error.status === 401)
    return 'Your session has expired. Reload the page.';
  if (error instanceof Error && error.message) return error.message;
  return 'Something went wrong.';
}

interface Parts {
  bell: HTMLButtonElement;
  badge: HTMLSpanElement;
  status: HTMLSpanElement;
  panel: HTMLDivElement;
  markAll: HTMLButtonElement;
  list: HTMLUListElement;
  empty: HTMLParagraphElement;
  error: HTMLParagraphElement;
  more: HTMLButtonElement;
}

function buildParts(root: ShadowRoot): Parts {
  const bell = el('button', {
    type: 'button',
    class: 'bell',
    part: 'bell',
    'aria-haspopup': 'true',
    'aria-expanded': 'false',
    'aria-controls': 'panel',
    'aria-label': 'Notifications',
  });
  const badge = el('span', { class: 'badge', part: 'badge', 'aria-hidden': 'true', hidden: '' });
  bell.append(bellIcon(), badge);
  const status = el('span', {
    class: 'sr-only',
    role: 'status',
    'aria-live': 'polite',
    'aria-atomic': 'true',
  });
  const panel = el('div', {
    id: 'panel',
    class: 'panel',
    part: 'panel',
    role: 'region',
    'aria-label': 'Notifications',
    hidden: '',
  });
  const head = el('div', { class: 'head' });
  const markAll = el('button', { type: 'button', class: 'link', part: 'mark-all' }, 'Mark all read');
  head.append(el('h2', {}, 'Notifications'), markAll);
  const list = el('ul', { class: 'list', part: 'list', role: 'list' });
  const empty = el('p', { class: 'empty', part: 'empty' }, 'No notifications yet.');
  const error = el('p', { class: 'error', part: 'error', role: 'alert', hidden: '' });
  const more = el(
    'button',
    { type: 'button', class: 'link more', part: 'load-more', hidden: '' },
    'Load more',
  );
  panel.append(head, error, list, empty, more);
  root.append(bell, status, panel);
  return { bell, badge, status, panel, markAll, list, empty, error, more };
}

/** The <herald-inbox> element. `client` is the live HeraldInbox while the element is connected. */
export class HeraldInboxElement extends HTMLElement {
  static observedAttributes = ['base-url', 'token', 'category', 'theme'];

  readonly #parts: Parts;
  #client: HeraldInbox | null = null;
  #items: InboxItem[] = [];
  #nextCursor: string | null = null;
  #unread: number | null = null;
  #busy = false;
  #stops: (() => void)[] = [];
  #connected = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    applyStyles(root);
    this.#parts = buildParts(root);
    this.#wire();
  }

  /** The headless client in use (null while disconnected or without a token). */
  get client(): HeraldInbox | null {
    return this.#client;
  }

  get isOpen(): boolean {
    return !this.#parts.panel.hidden;
  }

  connectedCallback(): void {
    this.#connected = true;
    document.addEventListener('click', this.#onDocumentClick);
    document.addEventListener('keydown', this.#onDocumentKeydown);
    this.#start();
  }

  disconnectedCallback(): void {
    this.#connected = false;
    document.removeEventListener('click', this.#onDocumentClick);
    document.removeEventListener('keydown', this.#onDocumentKeydown);
    this.#stop();
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value || name === 'theme' || !this.#connected) return;
    this.#stop();
    this.#start();
  }

  open(): void {
    const { panel, bell } = this.#parts;
    panel.hidden = false;
    bell.setAttribute('aria-expanded', 'true');
    // Under the bell, towards the side with room: leftwards unless the bell is too near the left edge.
    panel.classList.toggle('start', this.getBoundingClientRect().right < panel.offsetWidth + 8);
    this.#render();
    void this.#markSeen();
  }

  close(): void {
    this.#parts.panel.hidden = true;
    this.#parts.bell.setAttribute('aria-expanded', 'false');
  }

  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  /** Fetches the first page again. */
  async refresh(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    await this.#guard(async () => {
      const page = await client.feed(this.#query());
      if (this.#client !== client) return;
      this.#items = page.items;
      this.#nextCursor = page.nextCursor;
    });
  }

  #query(cursor?: string): FeedQuery {
    const category = this.getAttribute('category');
    return {
      status: 'all',
      archived: 'exclude',
      limit: PAGE_SIZE,
      ...(category ? { category } : {}),
      ...(cursor ? { cursor } : {}),
    };
  }

  #start(): void {
    const token = this.getAttribute('token');
    this.#items = [];
    this.#nextCursor = null;
    this.#showUnread(null);
    if (!token) {
      this.#parts.empty.textContent = 'Not signed in.';
      this.#render();
      return;
    }
    this.#parts.empty.textContent = 'No notifications yet.';
    const client = new HeraldInbox({ baseUrl: this.getAttribute('base-url') || scriptOrigin(), token });
    this.#client = client;
    this.#stops = [
      client.on('counts', (counts) => this.#showUnread(counts)),
      client.on('item.created', (item) => this.#upsert(item, true)),
      client.on('item.updated', (item) => this.#upsert(item, false)),
      client.on('item.deleted', (item) => this.#remove(item.id)),
      client.on('reset', (page) => {
        this.#items = page.items;
        this.#nextCursor = page.nextCursor;
        this.#render();
      }),
      client.on('connection', (event) => this.setAttribute('data-connection', event.state)),
      client.on('error', (error) => this.#showError(error)),
    ];
    // The first page first, so the live connection resumes right after it (since = its seq).
    void this.refresh().then(() => {
      if (this.#client === client && client.connectionState !== 'unauthorized') client.connect();
    });
  }

  #stop(): void {
    for (const stop of this.#stops) stop();
    this.#stops = [];
    this.#client?.close();
    this.#client = null;
  }

  #wire(): void {
    const { bell, markAll, more, list } = this.#parts;
    bell.addEventListener('click', () => this.toggle());
    markAll.addEventListener('click', () => void this.#markAllRead());
    more.addEventListener('click', () => void this.#loadMore());
    list.addEventListener('click', (event) => this.#onListClick(event));
  }

  /** Escape closes the panel, giving the focus back to the bell when it was inside. */
  #onDocumentKeydown = (event: KeyboardEvent): void => {
    if (event.key !== 'Escape' || !this.isOpen) return;
    const focusInside = this.shadowRoot?.activeElement !== null;
    this.close();
    if (focusInside) this.#parts.bell.focus();
  };

  #onDocumentClick = (event: MouseEvent): void => {
    if (this.isOpen && !event.composedPath().includes(this)) this.close();
  };

  #onListClick(event: MouseEvent): void {
    const target = event.target instanceof Element ? event.target : null;
    const row = target?.closest<HTMLLIElement>('li.item');
    const item = this.#items.find((candidate) => candidate.id === row?.dataset.id);
    if (!target || !item) return;
    if (target.closest('button.archive')) void this.#archive(item);
    else if (target.closest('a[data-action]')) this.#actionClicked(item);
    else if (target.closest('button.open')) void this.#activate(item);
  }

  /** Runs a call, showing its failure in the panel; renders afterwards either way. */
  async #guard(work: () => Promise<void>): Promise<boolean> {
    this.#busy = true;
    this.#parts.error.hidden = true;
    this.#render();
    try {
      await work();
      return true;
    } catch (error) {
      this.#showError(error);
      return false;
    } finally {
      this.#busy = false;
      this.#render();
    }
  }

  #showError(error: unknown): void {
    this.#parts.error.textContent = messageOf(error);
    this.#parts.error.hidden = false;
  }

  /**
   * Opens an item: with a URL, records the click (which the server counts as a read too) and
   * follows it, unless a `herald-inbox:navigate` listener cancels that; without one, marks it read.
   */
  async #activate(item: InboxItem): Promise<void> {
    const client = this.#client;
    if (!client) return;
    const url = safeUrl(item.url);
    if (!url) {
      if (item.readAt === null)
        await this.#guard(async () => this.#replace((await client.mark(item.id, 'read')).item));
      return;
    }
    // keepalive: the click is recorded even when the page goes before the answer comes.
    const clicked = await this.#guard(async () =>
      this.#replace((await client.mark(item.id, 'click', { keepalive: true })).item),
    );
    if (!clicked) return;
    const detail = { item, url };
    const navigate = new CustomEvent('herald-inbox:navigate', {
      detail,
      bubbles: true,
      composed: true,
      cancelable: true,
    });
    if (this.dispatchEvent(navigate)) location.assign(url);
  }

  /** An action link opens in a new tab by itself; the item counts as read and clicked. */
  #actionClicked(item: InboxItem): void {
    const client = this.#client;
    if (!client) return;
    client
      .mark(item.id, 'click', { keepalive: true })
      .then((result) => this.#replace(result.item))
      .catch((error: unknown) => this.#showError(error));
  }

  async #archive(item: InboxItem): Promise<void> {
    const client = this.#client;
    if (!client) return;
    await this.#guard(async () => {
      await client.mark(item.id, 'archive');
      this.#remove(item.id);
    });
  }

  async #markAllRead(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    await this.#guard(async () => {
      await client.mark('all', 'read');
      // The items' own state, shown at once (the counts come from the server's answer).
      const now = new Date().toISOString();
      this.#items = this.#items.map((item) => (item.readAt ? item : { ...item, readAt: now }));
    });
  }

  /** Opening the panel marks the items it shows as seen (not read). */
  async #markSeen(): Promise<void> {
    const client = this.#client;
    const ids = this.#items.filter((item) => item.seenAt === null).map((item) => item.id);
    if (!client || ids.length === 0) return;
    try {
      await client.mark(ids, 'seen');
      const now = new Date().toISOString();
      this.#items = this.#items.map((item) =>
        ids.includes(item.id) && !item.seenAt ? { ...item, seenAt: now } : item,
      );
    } catch (error) {
      this.#showError(error);
    }
  }

  async #loadMore(): Promise<void> {
    const client = this.#client;
    const cursor = this.#nextCursor;
    if (!client || !cursor || this.#busy) return;
    await this.#guard(async () => {
      const page = await client.feed(this.#query(cursor));
      if (this.#client !== client) return;
      const known = new Set(this.#items.map((item) => item.id));
      this.#items = [...this.#items, ...page.items.filter((item) => !known.has(item.id))];
      this.#nextCursor = page.nextCursor;
    });
  }

  /** A created or updated item from the live connection or an answer. */
  #upsert(item: InboxItem, created: boolean): void {
    const category = this.getAttribute('category');
    const index = this.#items.findIndex((candidate) => candidate.id === item.id);
    if (item.archivedAt !== null || (category && item.category !== category)) {
      if (index >= 0) this.#remove(item.id);
      return;
    }
    if (index >= 0) this.#items[index] = item;
    else if (created) {
      this.#items = [item, ...this.#items].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    } else return; // an item outside the pages shown
    this.#render();
  }

  #replace(item: InboxItem): void {
    this.#upsert(item, false);
  }

  #remove(id: string): void {
    this.#items = this.#items.filter((item) => item.id !== id);
    this.#render();
  }

  #showUnread(counts: InboxCounts | null): void {
    const unread = counts?.unread ?? null;
    const { badge, bell, status } = this.#parts;
    badge.hidden = !unread;
    badge.textContent = unread ? (unread > 99 ? '99+' : String(unread)) : '';
    bell.setAttribute('aria-label', unread ? `Notifications, ${unread} unread` : 'Notifications');
    if (unread !== this.#unread && unread !== null) {
      status.textContent = unread === 1 ? '1 unread notification' : `${unread} unread notifications`;
    }
    this.#unread = unread;
    this.#parts.markAll.disabled = !unread || this.#busy;
  }

  #render(): void {
    if (!this.isOpen) return;
    const { list, empty, more, markAll } = this.#parts;
    const focused = this.shadowRoot?.activeElement;
    const focusId = focused?.closest<HTMLLIElement>('li.item')?.dataset.id;
    const focusClass = focused?.classList.item(0);
    const locale = this.closest<HTMLElement>('[lang]')?.lang || undefined;
    list.replaceChildren(...this.#items.map((item) => itemRow(item, locale)));
    empty.hidden = this.#items.length > 0 || this.#busy;
    more.hidden = this.#nextCursor === null;
    more.disabled = this.#busy;
    markAll.disabled = !this.#unread || this.#busy;
    if (focusId && focusClass) {
      for (const row of Array.from(list.children)) {
        if (row instanceof HTMLElement && row.dataset.id === focusId)
          row.querySelector<HTMLElement>(`.${focusClass}`)?.focus();
      }
    }
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('herald-inbox')) {
  customElements.define('herald-inbox', HeraldInboxElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'herald-inbox': HeraldInboxElement;
  }
}
