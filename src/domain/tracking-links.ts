/**
 * Link rewriting for click tracking and the open pixel: pure string functions, no I/O.
 *
 * HTML is not parsed into a tree (a Worker has no DOM, and a parser would cost bundle size); the
 * functions scan `<a ...>` start tags with a tokenizer that respects quoted attribute values, so a
 * `>` or an `href=` inside another attribute's quotes is never mistaken for the link. Only the
 * first `href` counts, as in browsers. Entities in the href are decoded before the URL is handed
 * to the caller, and the replacement is written back HTML-escaped in double quotes.
 */

export interface LinkOptions {
  /** Links for which this returns true are left alone (say, the unsubscribe link). */
  skip?: (url: string) => boolean;
}

/** An `<a>` start tag: `<a` then attributes, where quoted values may contain `>`. */
const ANCHOR_TAG = /<a(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;

/** One attribute inside a start tag: name, then optionally `=` and a quoted or bare value. */
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>][^\s>]*)))?/g;

/** Template authors opt a link out of tracking with this attribute. */
const NO_TRACK_ATTRIBUTE = 'data-no-track';

const HTTP_URL = /^https?:\/\/[^\s]/i;

interface Href {
  /** Offset of the attribute (name included) inside the tag's attribute text. */
  start: number;
  end: number;
  /** The decoded, trimmed URL. */
  url: string;
}

/** The first `href` of an `<a>` tag's attribute text, unless the tag opts out of tracking. */
function findHref(attributes: string): Href | undefined {
  let href: Href | undefined;
  for (const match of attributes.matchAll(ATTRIBUTE)) {
    const name = (match[1] ?? '').toLowerCase();
    if (name === NO_TRACK_ATTRIBUTE) return undefined;
    if (name !== 'href' || href) continue;
    const raw = match[2] ?? match[3] ?? match[4];
    if (raw === undefined) continue;
    const start = match.index ?? 0;
    href = { start, end: start + match[0].length, url: decodeHtmlEntities(raw).trim() };
  }
  return href;
}

const trackable = (url: string, options: LinkOptions) => HTTP_URL.test(url) && !options.skip?.(url);

/** The http(s) link targets of `html` that `rewriteHtmlLinks` would rewrite, decoded, in order. */
export function htmlLinkTargets(html: string, options: LinkOptions = {}): string[] {
  const urls: string[] = [];
  for (const match of html.matchAll(ANCHOR_TAG)) {
    const href = findHref(match[1] ?? '');
    if (href && trackable(href.url, options)) urls.push(href.url);
  }
  return urls;
}

/**
 * Replaces the href of every `<a>` whose target is an http(s) URL with `makeUrl(target)`.
 * mailto:, tel:, `#anchors`, relative links, links `options.skip` refuses and `<a data-no-track>`
 * stay as they are; everything outside those href values is left byte for byte.
 */
export function rewriteHtmlLinks(
  html: string,
  makeUrl: (originalUrl: string) => string,
  options: LinkOptions = {},
): string {
  return html.replace(ANCHOR_TAG, (tag: string, attributes: string) => {
    const href = findHref(attributes);
    if (!href || !trackable(href.url, options)) return tag;
    const replaced = `href="${escapeHtmlAttribute(makeUrl(href.url))}"`;
    return `${tag.slice(0, 2)}${attributes.slice(0, href.start)}${replaced}${attributes.slice(href.end)}>`;
  });
}

/**
 * A URL in plain text. `<`, `>`, quotes, backticks and `|` end it, so Slack's `<url|label>`,
 * HTML-ish text and quoted URLs work; trailing punctuation is trimmed by `trimTrailing`.
 */
const TEXT_URL = /\bhttps?:\/\/[^\s<>"'`|]+/gi;

const TRAILING = /[.,;:!?*_~]$/;
const CLOSERS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

/** Drops sentence punctuation and unbalanced closing brackets from the end of a text URL. */
function trimTrailing(url: string): string {
  let out = url;
  for (;;) {
    const last = out.at(-1) ?? '';
    const opener = CLOSERS[last];
    if (TRAILING.test(last)) out = out.slice(0, -1);
    else if (opener && count(out, opener) < count(out, last)) out = out.slice(0, -1);
    else return out;
  }
}

const count = (text: string, char: string) => text.split(char).length - 1;

function textLinks(text: string): { index: number; url: string }[] {
  return [...text.matchAll(TEXT_URL)].map((match) => ({
    index: match.index ?? 0,
    url: trimTrailing(match[0]),
  }));
}

/** The http(s) URLs in plain text that `rewriteTextLinks` would rewrite, in order. */
export function textLinkTargets(text: string, options: LinkOptions = {}): string[] {
  return textLinks(text)
    .map((link) => link.url)
    .filter((url) => trackable(url, options));
}

/** Replaces every http(s) URL in plain text (SMS, push, chat) with `makeUrl(url)`. */
export function rewriteTextLinks(
  text: string,
  makeUrl: (originalUrl: string) => string,
  options: LinkOptions = {},
): string {
  let out = '';
  let from = 0;
  for (const { index, url } of textLinks(text)) {
    if (!trackable(url, options)) continue;
    out += text.slice(from, index) + makeUrl(url);
    from = index + url.length;
  }
  return out + text.slice(from);
}

/** Adds a 1x1 image loading `pixelUrl` just before the last `</body>`, or at the end. */
export function appendOpenPixel(html: string, pixelUrl: string): string {
  const pixel = `<img src="${escapeHtmlAttribute(pixelUrl)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">`;
  const at = html.toLowerCase().lastIndexOf('</body');
  return at < 0 ? html + pixel : html.slice(0, at) + pixel + html.slice(at);
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * Decodes the character references a URL attribute realistically holds: `&amp;` and the other
 * XML entities, and numeric ones (`&#38;`, `&#x26;`). Only terminated references are decoded, as
 * HTML does in attribute values (`&copy=1` in a query string stays as written).
 */
export function decodeHtmlEntities(text: string): string {
  return text.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code =
        ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)
        ? String.fromCodePoint(code)
        : whole;
    }
    return NAMED_ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

/** Escapes text for a double-quoted HTML attribute value. */
export function escapeHtmlAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
