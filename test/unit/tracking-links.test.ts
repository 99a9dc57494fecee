import { describe, expect, it } from 'vitest';
import {
  appendOpenPixel,
  decodeHtmlEntities,
  htmlLinkTargets,
  rewriteHtmlLinks,
  rewriteTextLinks,
  textLinkTargets,
} from '../../src/domain/tracking-links';

/** Wraps a URL visibly, so each expectation shows exactly what the caller was given. */
const wrap = (url: string) => `https://t.test/c?u=${encodeURIComponent(url)}`;

describe('rewriteHtmlLinks', () => {
  it('rewrites http and https hrefs and leaves everything else byte for byte', () => {
    const html =
      '<p>Hi <b>Ada</b>, <a href="https://example.com/a">pay</a> or <a href="http://example.com/b">read</a>.</p>';
    expect(rewriteHtmlLinks(html, wrap)).toBe(
      `<p>Hi <b>Ada</b>, <a href="${wrap('https://example.com/a').replace(/&/g, '&amp;')}">pay</a> or <a href="${wrap('http://example.com/b').replace(/&/g, '&amp;')}">read</a>.</p>`,
    );
  });

  it('leaves mailto:, tel:, #anchors, relative and javascript: links alone', () => {
    const html = [
      '<a href="mailto:ada@example.com">mail</a>',
      '<a href="tel:+14155550123">call</a>',
      '<a href="#top">top</a>',
      '<a href="/relative">rel</a>',
      '<a href="javascript:alert(1)">js</a>',
      '<a name="anchor">no href</a>',
    ].join('');
    expect(rewriteHtmlLinks(html, wrap)).toBe(html);
    expect(htmlLinkTargets(html)).toEqual([]);
  });

  it('handles attribute order, single quotes, bare values, upper case and whitespace around =', () => {
    const html = [
      `<a class="btn" target='_blank' href='https://example.com/1'>1</a>`,
      '<A HREF=https://example.com/2 title=x>2</A>',
      '<a\n  href = "https://example.com/3"\n  style="color:red">3</a>',
    ].join('');
    expect(htmlLinkTargets(html)).toEqual([
      'https://example.com/1',
      'https://example.com/2',
      'https://example.com/3',
    ]);
    const out = rewriteHtmlLinks(html, (url) => `https://t.test/${url.slice(-1)}`);
    expect(out).toBe(
      [
        `<a class="btn" target='_blank' href="https://t.test/1">1</a>`,
        '<A href="https://t.test/2" title=x>2</A>',
        '<a\n  href="https://t.test/3"\n  style="color:red">3</a>',
      ].join(''),
    );
  });

  it('is not fooled by href= or > inside another attribute, data-href, or <abbr>/<area>', () => {
    const html = [
      '<a title="see href=https://evil.example/x > here" href="https://example.com/real">x</a>',
      '<a data-href="https://example.com/data">no real href</a>',
      '<abbr href="https://example.com/abbr">abbr</abbr>',
      '<area href="https://example.com/area">',
    ].join('');
    expect(htmlLinkTargets(html)).toEqual(['https://example.com/real']);
    expect(rewriteHtmlLinks(html, () => 'https://t.test/x')).toBe(
      [
        '<a title="see href=https://evil.example/x > here" href="https://t.test/x">x</a>',
        '<a data-href="https://example.com/data">no real href</a>',
        '<abbr href="https://example.com/abbr">abbr</abbr>',
        '<area href="https://example.com/area">',
      ].join(''),
    );
  });

  it('decodes entities for the target and escapes the replacement', () => {
    const html = '<a href="https://example.com/p?a=1&amp;b=2&#38;c=3&#x26;d=&quot;4&quot;&copy=5">x</a>';
    expect(htmlLinkTargets(html)).toEqual(['https://example.com/p?a=1&b=2&c=3&d="4"&copy=5']);
    const out = rewriteHtmlLinks(html, (url) => `https://t.test/r?to=${url}`);
    expect(out).toBe(
      '<a href="https://t.test/r?to=https://example.com/p?a=1&amp;b=2&amp;c=3&amp;d=&quot;4&quot;&amp;copy=5">x</a>',
    );
  });

  it('uses the first href only (as browsers do) and trims whitespace around the URL', () => {
    const html = '<a href="  https://example.com/first\n" href="https://example.com/second">x</a>';
    expect(htmlLinkTargets(html)).toEqual(['https://example.com/first']);
    expect(rewriteHtmlLinks(html, () => 'https://t.test/1')).toBe(
      '<a href="https://t.test/1" href="https://example.com/second">x</a>',
    );
  });

  it('skips what the caller excludes and links marked data-no-track', () => {
    const html = [
      '<a href="https://herald.test/u/token">unsubscribe</a>',
      '<a data-no-track href="https://example.com/private">private</a>',
      '<a href="https://example.com/tracked">tracked</a>',
    ].join('');
    const options = { skip: (url: string) => url.startsWith('https://herald.test/') };
    expect(htmlLinkTargets(html, options)).toEqual(['https://example.com/tracked']);
    expect(rewriteHtmlLinks(html, () => 'https://t.test/x', options)).toBe(
      [
        '<a href="https://herald.test/u/token">unsubscribe</a>',
        '<a data-no-track href="https://example.com/private">private</a>',
        '<a href="https://t.test/x">tracked</a>',
      ].join(''),
    );
  });

  it('leaves a tag with an unbalanced quote untouched rather than guessing', () => {
    const html = '<a href="https://example.com/x>broken</a><p>rest</p>';
    expect(rewriteHtmlLinks(html, () => 'https://t.test/x')).toBe(html);
  });
});

describe('rewriteTextLinks', () => {
  it('rewrites URLs in text, trimming sentence punctuation and unbalanced brackets', () => {
    const text =
      'Track it at https://example.com/o/A-1001. Or (see https://example.com/help), or https://en.wikipedia.org/wiki/Foo_(bar)!';
    expect(textLinkTargets(text)).toEqual([
      'https://example.com/o/A-1001',
      'https://example.com/help',
      'https://en.wikipedia.org/wiki/Foo_(bar)',
    ]);
    expect(rewriteTextLinks(text, (url) => `<${url.length}>`)).toBe(
      'Track it at <28>. Or (see <24>), or <39>!',
    );
  });

  it('stops at Slack link syntax, markdown and quotes, and leaves non-http schemes', () => {
    const text =
      'Open <https://example.com/a|your order>, [docs](https://example.com/b) "https://example.com/c" ftp://x.test';
    expect(textLinkTargets(text)).toEqual([
      'https://example.com/a',
      'https://example.com/b',
      'https://example.com/c',
    ]);
    expect(rewriteTextLinks(text, () => 'L')).toBe('Open <L|your order>, [docs](L) "L" ftp://x.test');
  });

  it('keeps query strings and honours skip', () => {
    const text = 'Pay: https://example.com/pay?id=1&x=2 stop: https://herald.test/u/abc';
    const options = { skip: (url: string) => url.startsWith('https://herald.test/') };
    expect(textLinkTargets(text, options)).toEqual(['https://example.com/pay?id=1&x=2']);
    expect(rewriteTextLinks(text, () => 'L', options)).toBe('Pay: L stop: https://herald.test/u/abc');
  });

  it('returns text without URLs unchanged', () => {
    expect(rewriteTextLinks('no links here: example.com', () => 'L')).toBe('no links here: example.com');
  });
});

describe('appendOpenPixel', () => {
  it('goes before the last </body>, whatever its case', () => {
    const out = appendOpenPixel('<html><BODY><p>x</p></BODY></html>', 'https://t.test/o/a&b');
    expect(out).toBe(
      '<html><BODY><p>x</p><img src="https://t.test/o/a&amp;b" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0"></BODY></html>',
    );
  });

  it('is appended to a fragment without </body>', () => {
    const out = appendOpenPixel('<p>x</p>', 'https://t.test/o/t');
    expect(out.startsWith('<p>x</p><img src="https://t.test/o/t"')).toBe(true);
  });
});

describe('decodeHtmlEntities', () => {
  it('decodes terminated references only and leaves invalid code points', () => {
    expect(decodeHtmlEntities('&amp;&AMP;&lt;&gt;&quot;&apos;&#65;&#x42;&copy;&amp &#0;&#xD800;')).toBe(
      '&&<>"\'AB&copy;&amp &#0;&#xD800;',
    );
  });
});
