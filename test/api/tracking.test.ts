import { describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/env';
import { signToken } from '../../src/lib/signed-token';
import { createServices } from '../../src/services/container';
import {
  TRACKING_HITS_PER_MINUTE,
  trackEmail,
  trackMessage,
  trackText,
} from '../../src/services/tracking/opens-and-clicks';
import { api, json, testEnv } from '../helpers/api';
import { delivery, deliveryRow, sentDelivery } from '../helpers/deliveries';
import { everyDatabase } from '../helpers/shards';

const _repo = createServices(testEnv).deliveries;
const services = createServices(testEnv);
const GIF_HEADER = [0x47, 0x49, 0x46, 0x38, 0x39, 0x61]; // "GIF89a"

/** The href values and the pixel src of tracked HTML, entity-decoded. */
function linksOf(html: string): { hrefs: string[]; pixel: string } {
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => (m[1] ?? '').replace(/&amp;/g, '&'));
  const pixel = /<img src="([^"]*)"/.exec(html)?.[1] ?? '';
  return { hrefs, pixel };
}

const pathOf = (url: string) => {
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
};

/** What a mail client gets for a tracking URL or path: no API key. */
const visit = (url: string, method = 'GET') =>
  api(method, url.startsWith('/') ? url : pathOf(url), undefined, { key: null });

const EMAIL_HTML = [
  '<html><body>',
  '<p>Hi Ada, <a class="btn" href="https://shop.example/pay?invoice=42&amp;currency=EUR">pay now</a></p>',
  '<p><a href="mailto:billing@shop.example">write to us</a></p>',
  '<p><a href="https://herald.test/u/unsubscribe-token">unsubscribe</a></p>',
  '</body></html>',
].join('');

/** A sent delivery, the first tracked link of its email and its open pixel. */
async function trackedEmail(): Promise<{ id: string; click: string; pixel: string }> {
  const id = await sentDelivery();
  const { hrefs, pixel } = linksOf(await trackEmail(services, { deliveryId: id, html: EMAIL_HTML }));
  return { id, click: hrefs[0] ?? '', pixel };
}

describe('trackEmail', () => {
  it('wraps http(s) links, leaves mailto: and Herald’s own links, and adds one pixel', async () => {
    const id = await sentDelivery();
    const html = await trackEmail(services, { deliveryId: id, html: EMAIL_HTML });
    const { hrefs, pixel } = linksOf(html);
    expect(hrefs[0]).toMatch(/^https:\/\/herald\.test\/t\/c\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(hrefs.slice(1)).toEqual([
      'mailto:billing@shop.example',
      'https://herald.test/u/unsubscribe-token',
    ]);
    expect(pixel).toMatch(/^https:\/\/herald\.test\/t\/o\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(html.indexOf('<img')).toBeLessThan(html.indexOf('</body>'));
    // The token carries ids and the URL, never the recipient.
    expect(html).not.toContain('ada@example.com');
  });

  it('leaves the HTML alone when SIGNING_SECRET is not set', async () => {
    const env = { ...testEnv, SIGNING_SECRET: undefined } as Env;
    expect(await trackEmail(createServices(env), { deliveryId: 'dlv_x', html: EMAIL_HTML })).toBe(EMAIL_HTML);
  });
});

describe('open pixel', () => {
  it('answers a never-cached 1x1 GIF and records opened', async () => {
    const { id, pixel } = await trackedEmail();
    const res = await visit(pixel);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(res.headers.get('cache-control')).toBe('no-store, no-cache, must-revalidate, private');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.subarray(0, 6)]).toEqual(GIF_HEADER);
    expect([...bytes.subarray(6, 10)]).toEqual([1, 0, 1, 0]); // logical screen 1 x 1
    const after = await delivery(id);
    expect(after.status).toBe('opened');
    expect(after.history.at(-1)).toMatchObject({ status: 'opened' });
  });

  it('answers the same GIF for a forged, garbled or wrong-purpose token and records nothing', async () => {
    const id = await sentDelivery();
    const before = await delivery(id);
    const forged = await signToken('not-the-secret', 'open', { d: id });
    const clickToken = await signToken('test-signing-secret', 'click', { d: id, u: 'https://x.example/' });
    for (const token of [forged, clickToken, 'garbage', 'a.b', `${forged}x`]) {
      const res = await visit(`/t/o/${token}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/gif');
      expect([...new Uint8Array(await res.arrayBuffer()).subarray(0, 6)]).toEqual(GIF_HEADER);
    }
    const after = await delivery(id);
    expect(after.status).toBe('sent');
    expect(after.history).toEqual(before.history);
  });

  it('answers HEAD (a prefetch) without counting it', async () => {
    const { id, pixel } = await trackedEmail();
    const res = await visit(pixel, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect((await delivery(id)).status).toBe('sent');
  });
});

describe('click redirect', () => {
  it('redirects to the exact original URL (entities decoded) and records clicked', async () => {
    const { id, click } = await trackedEmail();
    const res = await visit(click);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://shop.example/pay?invoice=42&currency=EUR');
    expect(res.headers.get('cache-control')).toContain('no-store');
    const after = await delivery(id);
    expect(after.status).toBe('clicked');
    expect(after.history.at(-1)).toMatchObject({ status: 'clicked' });
  });

  it('never takes the target from the query string', async () => {
    const { click } = await trackedEmail();
    const evil = encodeURIComponent('https://evil.example/phish');
    const res = await visit(`${pathOf(click)}?u=${evil}&url=${evil}&redirect=${evil}&next=${evil}`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://shop.example/pay?invoice=42&currency=EUR');
  });

  it('answers 404 with no details for a token whose URL was swapped', async () => {
    const id = await sentDelivery();
    const token = await signToken('test-signing-secret', 'click', { d: id, u: 'https://shop.example/a' });
    const [, mac] = token.split('.');
    const swappedPayload = btoa(JSON.stringify({ v: 1, d: id, u: 'https://evil.example/a' }))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    const res = await visit(`/t/c/${swappedPayload}.${mac}`);
    expect(res.status).toBe(404);
    expect(res.headers.get('location')).toBeNull();
    expect(await json(res)).toEqual({ error: { code: 'not_found', message: 'not found' } });
    expect((await delivery(id)).status).toBe('sent');
  });

  it('answers 404 for forged, open-purpose and garbage tokens, and records nothing', async () => {
    const id = await sentDelivery();
    const forged = await signToken('not-the-secret', 'click', { d: id, u: 'https://evil.example/' });
    const openToken = await signToken('test-signing-secret', 'open', { d: id });
    const notHttp = await signToken('test-signing-secret', 'click', { d: id, u: 'javascript:alert(1)' });
    for (const token of [forged, openToken, notHttp, 'garbage']) {
      const res = await visit(`/t/c/${token}`);
      expect(res.status).toBe(404);
      const text = await res.text();
      expect(text).not.toMatch(/stack|Error:|at \w+ \(/);
    }
    expect((await delivery(id)).status).toBe('sent');
  });

  it('answers HEAD with the same redirect without counting it', async () => {
    const { id, click } = await trackedEmail();
    const res = await visit(click, 'HEAD');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://shop.example/pay?invoice=42&currency=EUR');
    expect((await delivery(id)).status).toBe('sent');
  });

  it('a click after an open moves opened → clicked; a later open writes nothing', async () => {
    const { id, click, pixel } = await trackedEmail();
    await visit(pixel);
    await visit(click);
    await visit(pixel);
    const after = await delivery(id);
    expect(after.status).toBe('clicked');
    expect(after.history.map((h) => h.status)).toEqual(['created', 'sent', 'opened', 'clicked']);
  });
});

/** The delivery's stored row as it is, every column (updated_at too, so any UPDATE shows). */
const storedRow = (id: string) => deliveryRow(id);

/** The test env with D1 databases (home and shards) that count the statements prepared on the deliveries table. */
function countingEnv(): { env: Env; statements: () => number } {
  let count = 0;
  const counting = (db: D1Database) =>
    new Proxy(db, {
      get(target, property, receiver) {
        if (property === 'prepare')
          return (sql: string) => {
            if (/\bdeliveries\b/.test(sql)) count += 1;
            return target.prepare(sql);
          };
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return { env: { ...testEnv, ...everyDatabase(counting) } as Env, statements: () => count };
}

describe('tracking writes only the first open and click, and a flood is cut off', () => {
  it('the second open of a delivery writes nothing', async () => {
    const { id, pixel } = await trackedEmail();
    await visit(pixel);
    const afterFirst = await storedRow(id);
    const changed = await createServices(testEnv).events.applyFirst(
      { deliveryId: id, status: 'opened', at: Date.now() },
      Date.now(),
    );
    expect(changed).toEqual({ applied: false, step: null });
    const res = await visit(pixel);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(await storedRow(id)).toEqual(afterFirst);
    expect((await delivery(id)).history.map((h) => h.status)).toEqual(['created', 'sent', 'opened']);
  });

  it('the click redirect still works on repeats, and only the first click is recorded', async () => {
    const { id, click } = await trackedEmail();
    for (let i = 0; i < 3; i++) {
      const res = await visit(click);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('https://shop.example/pay?invoice=42&currency=EUR');
    }
    expect((await delivery(id)).history.map((h) => h.status)).toEqual(['created', 'sent', 'clicked']);
  });

  it('a flood of one token is cut off: past the limit nothing is even read, the answers stay the same', async () => {
    const { id, click, pixel } = await trackedEmail();
    const { env, statements } = countingEnv();
    const hit = (url: string) => api('GET', pathOf(url), undefined, { key: null, env });
    // Each hit let through is one D1 batch of two statements: the first-only UPDATE, and before it
    // the statement counting the status change it makes (none for a repeat) in metric_counters.
    const perHit = 2;
    for (let i = 0; i < TRACKING_HITS_PER_MINUTE; i++) await hit(pixel);
    expect(statements()).toBe(perHit * TRACKING_HITS_PER_MINUTE);
    for (let i = 0; i < 30; i++) {
      const res = await hit(pixel);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/gif');
    }
    expect(statements()).toBe(perHit * TRACKING_HITS_PER_MINUTE);
    // The click token has its own budget; past it the redirect still works, and reads nothing.
    for (let i = 0; i < TRACKING_HITS_PER_MINUTE + 30; i++) {
      const res = await hit(click);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('https://shop.example/pay?invoice=42&currency=EUR');
    }
    expect(statements()).toBe(2 * perHit * TRACKING_HITS_PER_MINUTE);
    expect((await delivery(id)).history.map((h) => h.status)).toEqual([
      'created',
      'sent',
      'opened',
      'clicked',
    ]);
  });
});

describe('text tracking', () => {
  it('trackText wraps URLs in SMS text and the link redirects to the original', async () => {
    const id = await sentDelivery({ channel: 'sms', phone: '+14155550123' });
    const text = await trackText(services, {
      deliveryId: id,
      text: 'Your order A-1001 shipped: https://shop.example/o/A-1001. Reply STOP to opt out.',
    });
    // The link is replaced by a click URL signed for this delivery and that target.
    const token = await signToken('test-signing-secret', 'click', {
      d: id,
      u: 'https://shop.example/o/A-1001',
    });
    const click = `https://herald.test/t/c/${token}`;
    expect(text).toBe(`Your order A-1001 shipped: ${click}. Reply STOP to opt out.`);
    const res = await visit(click);
    expect(res.headers.get('location')).toBe('https://shop.example/o/A-1001');
    expect((await delivery(id)).status).toBe('clicked');
  });

  it('trackMessage tracks email always, other channels only with trackClicks, webhooks never', async () => {
    const delivery = { id: 'dlv_0000000000aaaaaaaaaaaaaaaa' };
    const sms = { text: 'See https://shop.example/x' };
    expect(await trackMessage(services, { ...delivery, channel: 'sms' }, sms)).toEqual(sms);
    expect(
      await trackMessage(services, { ...delivery, channel: 'sms' }, sms, { trackClicks: false }),
    ).toEqual(sms);
    const tracked = await trackMessage(services, { ...delivery, channel: 'sms' }, sms, { trackClicks: true });
    expect(tracked.text).toMatch(/^See https:\/\/herald\.test\/t\/c\//);

    const push = { title: 'Shipped', body: 'Track https://shop.example/t', url: 'https://shop.example/app' };
    const pushTracked = await trackMessage(services, { ...delivery, channel: 'push' }, push, {
      trackClicks: true,
    });
    expect(pushTracked.title).toBe('Shipped');
    expect(pushTracked.body).toMatch(/^Track https:\/\/herald\.test\/t\/c\//);
    expect(pushTracked.url).toMatch(/^https:\/\/herald\.test\/t\/c\//);

    const email = { subject: 'Hi', text: 'Pay at https://shop.example/pay', html: EMAIL_HTML };
    const emailTracked = await trackMessage(services, { ...delivery, channel: 'email' }, email);
    expect(emailTracked.text).toBe(email.text);
    expect(emailTracked.html).toContain('/t/o/');

    const webhook = { json: { url: 'https://shop.example/x' } };
    expect(
      await trackMessage(services, { ...delivery, channel: 'webhook' }, webhook, { trackClicks: true }),
    ).toEqual(webhook);
  });
});

describe('OpenAPI', () => {
  it('documents the tracking and webhook routes', async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(
      await api('GET', '/openapi.json', undefined, { key: null }),
    );
    expect(Object.keys(doc.paths['/t/o/{token}'] ?? {})).toContain('get');
    expect(Object.keys(doc.paths['/t/c/{token}'] ?? {})).toContain('get');
    expect(Object.keys(doc.paths['/v1/webhooks/{provider}'] ?? {})).toContain('post');
  });
});
