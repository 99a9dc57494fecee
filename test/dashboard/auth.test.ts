import { describe, expect, it } from 'vitest';
import { signToken, verifyToken } from '../../src/lib/signed-token';
import { ADMIN_KEY, api } from '../helpers/api';

const ORIGIN = 'https://herald.test';
const SECRET = 'test-signing-secret';
const FORM = 'application/x-www-form-urlencoded';

/** A browser-like request to the dashboard: no API key, optional cookie, form bodies. */
function browser(
  method: string,
  path: string,
  options: { cookie?: string; origin?: string | null; form?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = {};
  if (options.cookie) headers.Cookie = options.cookie;
  const origin = options.origin === undefined ? ORIGIN : options.origin;
  if (method === 'POST' && origin !== null) headers.Origin = origin;
  if (options.form) headers['Content-Type'] = FORM;
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return api(method, path, body, { key: null, headers });
}

async function login(): Promise<{ setCookie: string; cookie: string }> {
  const res = await browser('POST', '/dashboard/login', { form: { key: ADMIN_KEY } });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get('Set-Cookie') ?? '';
  return { setCookie, cookie: setCookie.split(';')[0] ?? '' };
}

const session = (token: string) => `herald_session=${token}`;

describe('dashboard login', () => {
  it('shows the form without a session', async () => {
    const res = await browser('GET', '/dashboard/login');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<form method="post" action="/dashboard/login">');
    expect(html).toContain('name="key" type="password"');
  });

  it('sets a signed session cookie with the exact flags, never the key', async () => {
    const res = await browser('POST', '/dashboard/login', { form: { key: ADMIN_KEY } });
    expect(res.status).toBe(303);
    expect(res.headers.get('Location')).toBe('/dashboard');
    const setCookie = res.headers.get('Set-Cookie') ?? '';
    const [pair, ...attributes] = setCookie.split('; ');
    expect(attributes.sort()).toEqual(
      ['HttpOnly', 'Max-Age=43200', 'Path=/dashboard', 'SameSite=Strict', 'Secure'].sort(),
    );
    expect(setCookie).not.toContain(ADMIN_KEY);
    const token = pair?.replace(/^herald_session=/, '') ?? '';
    const now = Date.now();
    expect(await verifyToken(SECRET, 'dashboard', token, now)).toEqual({ sub: 'admin' });
    // Twelve hours, not more.
    expect(await verifyToken(SECRET, 'dashboard', token, now + 11.9 * 3600_000)).toEqual({ sub: 'admin' });
    expect(await verifyToken(SECRET, 'dashboard', token, now + 12 * 3600_000 + 1000)).toBeNull();
    // The session opens the dashboard.
    const overview = await browser('GET', '/dashboard', { cookie: session(token) });
    expect(overview.status).toBe(200);
  });

  it('a wrong or missing key is the form again with an error, 401, and no cookie', async () => {
    for (const form of [{ key: 'not-the-key' }, { key: '' }, {}] as Record<string, string>[]) {
      const res = await browser('POST', '/dashboard/login', { form });
      expect(res.status).toBe(401);
      expect(res.headers.get('Set-Cookie')).toBeNull();
      const html = await res.text();
      expect(html).toContain('That key is not the admin key.');
      expect(html).toContain('action="/dashboard/login"');
    }
  });

  it('logging out clears the cookie', async () => {
    const { cookie } = await login();
    const res = await browser('POST', '/dashboard/logout', { cookie });
    expect(res.status).toBe(303);
    expect(res.headers.get('Location')).toBe('/dashboard/login');
    const cleared = res.headers.get('Set-Cookie') ?? '';
    expect(cleared).toMatch(
      /^herald_session=; Max-Age=0; Path=\/dashboard; HttpOnly; Secure; SameSite=Strict$/,
    );
  });
});

describe('dashboard sessions', () => {
  const pages = [
    '/dashboard',
    '/dashboard/notifications',
    '/dashboard/notifications/ntf_x',
    '/dashboard/dead-letters',
    '/dashboard/providers',
    '/dashboard/outbox',
    '/dashboard/no-such-page',
  ];

  it('every page without a session redirects to the login form', async () => {
    for (const path of pages) {
      const res = await browser('GET', path);
      expect(res.status, path).toBe(302);
      expect(res.headers.get('Location'), path).toBe('/dashboard/login');
    }
    const post = await browser('POST', '/dashboard/dead-letters/replay', { form: { channel: 'email' } });
    expect(post.status).toBe(302);
    expect((await browser('POST', '/dashboard/providers/mailgun', { form: { enabled: 'off' } })).status).toBe(
      302,
    );
  });

  it('forged, expired, altered or re-purposed cookies redirect to the login form', async () => {
    const now = Date.now();
    const valid = await signToken(SECRET, 'dashboard', { sub: 'admin' }, { expiresAtMs: now + 3600_000 });
    const [payload = '', mac = ''] = valid.split('.');
    const forged = [
      await signToken('another-secret', 'dashboard', { sub: 'admin' }, { expiresAtMs: now + 3600_000 }),
      await signToken(SECRET, 'dashboard', { sub: 'admin' }, { expiresAtMs: now - 1000 }),
      await signToken(SECRET, 'open', { sub: 'admin' }, { expiresAtMs: now + 3600_000 }),
      await signToken(SECRET, 'dashboard', { sub: 'someone' }, { expiresAtMs: now + 3600_000 }),
      `${payload}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BA' : 'AA'}`,
      `${btoa(JSON.stringify({ v: 1, sub: 'admin', exp: 9_999_999_999 })).replace(/=+$/, '')}.${mac}`,
      ADMIN_KEY,
      '',
    ];
    for (const token of forged) {
      const res = await browser('GET', '/dashboard', { cookie: session(token) });
      expect(res.status, token).toBe(302);
      expect(res.headers.get('Location')).toBe('/dashboard/login');
    }
    // The genuine one passes, so the redirects above are about the token, not the request.
    expect((await browser('GET', '/dashboard', { cookie: session(valid) })).status).toBe(200);
  });
});

describe('dashboard CSRF and headers', () => {
  it('refuses a POST whose Origin is missing or foreign, even with a session', async () => {
    const { cookie } = await login();
    for (const origin of [null, 'https://evil.example', 'http://herald.test', 'null']) {
      const res = await browser('POST', '/dashboard/dead-letters/replay', {
        cookie,
        origin,
        form: { channel: 'email' },
      });
      expect(res.status, String(origin)).toBe(403);
    }
    // Login CSRF too: no session is handed to a foreign form.
    const foreign = await browser('POST', '/dashboard/login', {
      origin: 'https://evil.example',
      form: { key: ADMIN_KEY },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('Set-Cookie')).toBeNull();
  });

  it('every dashboard response has a strict CSP whose nonce matches the stylesheet, and is not cached', async () => {
    const { cookie } = await login();
    const responses = [
      await browser('GET', '/dashboard/login'),
      await browser('GET', '/dashboard', { cookie }),
      await browser('GET', '/dashboard/providers', { cookie }),
      await browser('GET', '/dashboard'),
    ];
    for (const res of responses) {
      const csp = res.headers.get('Content-Security-Policy') ?? '';
      const directives = Object.fromEntries(
        csp.split('; ').map((d) => {
          const [name = '', ...values] = d.split(' ');
          return [name, values.join(' ')];
        }),
      );
      expect(directives['default-src']).toBe("'none'");
      expect(directives['style-src']).toMatch(/^'nonce-[A-Za-z0-9+/]{22}=='$/);
      expect(directives['script-src']).toBeUndefined(); // no script at all: default-src 'none' applies
      expect(directives['img-src']).toBe("'self' data:");
      expect(directives['form-action']).toBe("'self'");
      expect(directives['frame-ancestors']).toBe("'none'");
      expect(directives['base-uri']).toBe("'none'");
      expect(res.headers.get('Cache-Control')).toBe('no-store');
      if (res.status === 200) {
        const nonce = directives['style-src']?.slice("'nonce-".length, -1);
        const html = await res.text();
        expect(html).toContain(`<style nonce="${nonce}">`);
        // Under the app-wide no-referrer policy a form POST's Origin would be "null": pages opt back in.
        expect(html).toContain('<meta name="referrer" content="same-origin"/>');
        expect(html).not.toMatch(/<script|\sstyle="|\son[a-z]+=/i);
      }
    }
    // A fresh nonce per response.
    const [a, b] = await Promise.all([
      browser('GET', '/dashboard/login'),
      browser('GET', '/dashboard/login'),
    ]);
    expect(a.headers.get('Content-Security-Policy')).not.toBe(b.headers.get('Content-Security-Policy'));
  });
});
