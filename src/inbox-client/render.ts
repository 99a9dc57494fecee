// DOM building for <herald-inbox>. Every piece of item content goes in as text (textContent,
// setAttribute), never as markup; links and images take http(s) URLs only.
import type { InboxItem } from './types';

type Attributes = Record<string, string>;

/** An element with attributes and, optionally, text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The URL when it is http(s) (resolved against the page), else null: no javascript:, data: or the like. */
export function safeUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url, document.baseURI);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400],
  ['month', 30 * 86_400],
  ['week', 7 * 86_400],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
];

/** "5 minutes ago", "yesterday", "just now". */
export function relativeTime(iso: string, now = Date.now(), locale?: string): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (!Number.isFinite(seconds)) return '';
  if (Math.abs(seconds) < 45) return 'just now';
  const format = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(Math.round(seconds / 60), 'minute');
}

/** The bell icon (SVG built as nodes). */
export function bellIcon(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute(
    'd',
    'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6v-5a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z',
  );
  svg.append(path);
  return svg;
}

function avatarOf(item: InboxItem): HTMLImageElement | null {
  const src = safeUrl(item.avatar);
  if (!src) return null;
  const img = el('img', {
    class: 'avatar',
    part: 'avatar',
    src,
    alt: '',
    loading: 'lazy',
    referrerpolicy: 'no-referrer',
  });
  img.addEventListener('error', () => img.remove(), { once: true });
  return img;
}

function actionsOf(item: InboxItem): HTMLElement | null {
  const links = item.actions
    .slice(0, 2)
    .map((action) => ({ label: action.label, href: safeUrl(action.url) }))
    .filter((action): action is { label: string; href: string } => action.href !== null);
  if (links.length === 0) return null;
  const box = el('div', { class: 'actions' });
  for (const [index, link] of links.entries()) {
    box.append(
      el(
        'a',
        {
          href: link.href,
          part: 'action',
          'data-action': String(index),
          rel: 'noopener noreferrer',
          target: '_blank',
        },
        link.label,
      ),
    );
  }
  return box;
}

/** One item's row: the open button (title, body), time, action links, and the archive button. */
export function itemRow(item: InboxItem, locale?: string): HTMLLIElement {
  const unread = item.readAt === null;
  const li = el('li', { class: unread ? 'item unread' : 'item', part: unread ? 'item unread' : 'item' });
  li.dataset.id = item.id;
  const avatar = avatarOf(item);
  if (avatar) li.append(avatar);
  const content = el('div', { class: 'content' });
  const open = el('button', { type: 'button', class: 'open', part: 'open' });
  open.append(el('span', { class: 'title', part: 'title' }, item.title));
  if (item.body) open.append(el('span', { class: 'body', part: 'body' }, item.body));
  if (unread) open.append(el('span', { class: 'sr-only' }, ' (unread)'));
  content.append(open);
  const time = el(
    'time',
    { class: 'time', datetime: item.createdAt },
    relativeTime(item.createdAt, Date.now(), locale),
  );
  const created = new Date(item.createdAt);
  if (!Number.isNaN(created.getTime())) time.title = created.toLocaleString(locale);
  content.append(time);
  const actions = actionsOf(item);
  if (actions) content.append(actions);
  li.append(content);
  const archive = el(
    'button',
    { type: 'button', class: 'archive', part: 'archive', 'aria-label': `Archive: ${item.title}` },
    '×',
  );
  li.append(archive);
  return li;
}
