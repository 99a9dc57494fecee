import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApp, MAX_BODY_BYTES } from '../../src/api/app';
import { MAX_CALLBACK_BYTES } from '../../src/api/routes/provider-callbacks';
import type { Env } from '../../src/config/env';
import { SESSION_COOKIE, SESSION_PURPOSE } from '../../src/dashboard/session';
import worker from '../../src/index';
import { signToken } from '../../src/lib/signed-token';
import { ADMIN_KEY, api, json, testEnv } from '../helpers/api';
import { envWithCapturedQueues } from '../helpers/queues';
import { snapshotChanges, storageSnapshot } from '../helpers/row-counts';
import { everyDatabase } from '../helpers/shards';

/**
 * The HTTP envelope every answer shares: request ids, body limits, content types, unknown routes,
 * security headers, no CORS, and a 500 that says nothing. Routes come from GET /openapi.json and
 * the app's route table, so a new route is covered here without a change.
 */

const SEED = 20_261_128;
const ORIGIN = 'https://herald.test';
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

const { env: ENV } = envWithCapturedQueues();

async function send(request: Request, env: Env = ENV): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

interface Envelope {
  error: { code: string; message: string };
}

async function expectEnvelope(response: Response, status: number, code?: string): Promise<Envelope> {
  expect(response.status).toBe(status);
  expect(response.headers.get('Content-Type')).toMatch(/^application\/json/);
  const body = await json<Envelope>(response);
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  if (code) expect(body.error.code).toBe(code);
  return body;
}

interface Route {
  method: string;
  template: string;
  jsonBody: boolean;
}

async function routes(): Promise<Route[]> {
  const doc = await json<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(
    await api('GET', '/openapi.json', undefined, { key: null }),
  );
  const found = new Map<string, Route>();
  for (const [template, operations] of Object.entries(doc.paths))
    for (const [method, operation] of Object.entries(operations))
      found.set(`${method.toUpperCase()} ${template}`, {
        method: method.toUpperCase(),
        template,
        jsonBody: operation.requestBody !== undefined,
      });
  for (const { method, path } of createApp().routes) {
    if (method === 'ALL' || path.includes('*')) continue;
    const template = path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    if (!found.has(`${method} ${template}`))
      found.set(`${method} ${template}`, { method, template, jsonBody: false });
  }
  return [...found.values()];
}

const ROUTES = await routes();
const JSON_ROUTES = ROUTES.filter((r) => r.jsonBody);

const PARAMS: Record<string, string> = {
  userId: 'hardening_user',
  id: 'hardening-id',
  type: 'payment_reminder',
  channel: 'email',
  name: 'resend',
  provider: 'sendgrid',
  token: 'x1',
};
const fill = (template: string) =>
  template.replace(/\{([^}]+)\}/g, (_, name: string) => PARAMS[name] ?? 'x1');

/** The inbox's client routes take an end user's inbox token instead of an API key. */
const INBOX_CLIENT = /^\/v1\/inbox\/(feed|counts|items)/;
const INBOX_TOKEN = (
  (await (
    await send(
      new Request(`${ORIGIN}/v1/inbox/tokens`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ userId: 'hardening_user' }),
      }),
    )
  ).json()) as { token: string }
).token;

function request(
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string>; key?: string | null } = {},
): Request {
  const headers = new Headers(init.headers);
  const key = init.key === undefined ? (INBOX_CLIENT.test(path) ? INBOX_TOKEN : ADMIN_KEY) : init.key;
  if (key !== null) headers.set('Authorization', `Bearer ${key}`);
  return new Request(`${ORIGIN}${path}`, { method, headers, body: init.body });
}

const jsonHeaders = { 'Content-Type': 'application/json' };
const bytes = (text: string) => new TextEncoder().encode(text);

/** A JSON object of exactly `size` bytes: `{"pad":"xxx…"}`. */
const paddedJson = (size: number) => `{"pad":"${'x'.repeat(size - 10)}"}`;

describe('request id', () => {
  it('a well-formed X-Request-Id is echoed, anything else is replaced by a fresh one', async () => {
    const paths = ['/healthz', '/v1/notifications', '/v2/nothing', '/t/o/x', '/dashboard/login', '/u/x'];
    const incoming = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
      fc.string({ maxLength: 100 }).map((s) => s.replace(/[\0\r\n]/g, '')),
      fc.constantFrom('', ' ', 'a b', 'x'.repeat(65), '<script>', 'id"; drop', '../../x', 'a,b', '%0d%0a'),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), incoming, async (path, id) => {
        let req: Request;
        try {
          req = request('GET', path, { headers: { 'X-Request-Id': id } });
        } catch {
          return; // a value Headers refuses never reaches the Worker
        }
        const sent = req.headers.get('X-Request-Id') ?? '';
        const res = await send(req);
        const echoed = res.headers.get('X-Request-Id') ?? '';
        expect(echoed).toMatch(REQUEST_ID);
        if (REQUEST_ID.test(sent)) expect(echoed).toBe(sent);
        else expect(echoed).not.toBe(sent);
      }),
      { seed: SEED, numRuns: 80 },
    );
  });

  it('every answer without one gets a fresh, unique id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i += 1) {
      const res = await send(request('GET', '/healthz'));
      ids.add(res.headers.get('X-Request-Id') ?? '');
    }
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(REQUEST_ID);
  });
});

describe('body limits', () => {
  it(`every /v1 JSON route reads a body of exactly ${MAX_BODY_BYTES} bytes and refuses one byte more with 413, writing nothing`, async () => {
    expect(JSON_ROUTES.length).toBeGreaterThan(10);
    for (const route of JSON_ROUTES) {
      const path = fill(route.template);
      const atLimit = await send(
        request(route.method, path, { body: paddedJson(MAX_BODY_BYTES), headers: jsonHeaders }),
      );
      expect(atLimit.status, `${route.method} ${route.template} at the limit`).not.toBe(413);
      expect(atLimit.status, `${route.method} ${route.template} at the limit`).toBeLessThan(500);

      const before = await storageSnapshot(ENV);
      const over = await send(
        request(route.method, path, { body: paddedJson(MAX_BODY_BYTES + 1), headers: jsonHeaders }),
      );
      await expectEnvelope(over, 413, 'payload_too_large');
      expect(
        snapshotChanges(before, await storageSnapshot(ENV)),
        `${route.method} ${route.template}`,
      ).toEqual([]);
    }
  });

  it('a streamed body without Content-Length is cut off at the limit too', async () => {
    const chunk = bytes('x'.repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES * 4) controller.close();
        else {
          sent += chunk.length;
          controller.enqueue(chunk);
        }
      },
    });
    const res = await send(request('POST', '/v1/notifications', { body: stream, headers: jsonHeaders }));
    await expectEnvelope(res, 413, 'payload_too_large');
  });

  it('provider callbacks allow 1 MB (batched events) and refuse more with 413', async () => {
    const res = await send(
      request('POST', '/v1/webhooks/sendgrid', {
        key: null,
        body: 'x'.repeat(MAX_CALLBACK_BYTES + 1),
        headers: jsonHeaders,
      }),
    );
    await expectEnvelope(res, 413, 'payload_too_large');
  });

  it('dashboard forms over 16 KB are refused with a 413 page', async () => {
    const res = await send(
      request('POST', '/dashboard/login', {
        key: null,
        body: `key=${'x'.repeat(16 * 1024)}`,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: ORIGIN },
      }),
    );
    expect(res.status).toBe(413);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/html/);
  });
});

describe('content types', () => {
  const refused: [string, Record<string, string>, BodyInit][] = [
    ['no Content-Type', {}, bytes('{}')],
    ['text/plain', { 'Content-Type': 'text/plain' }, '{}'],
    ['a form', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'a=1'],
    ['multipart', { 'Content-Type': 'multipart/form-data; boundary=x' }, '--x--'],
    ['application/jsonx', { 'Content-Type': 'application/jsonx' }, '{}'],
    ['application/xml', { 'Content-Type': 'application/xml' }, '<a/>'],
  ];

  it('every /v1 JSON route answers any other content type with 415 in the envelope, writing nothing', async () => {
    const before = await storageSnapshot(ENV);
    for (const route of JSON_ROUTES) {
      for (const [what, headers, body] of refused) {
        const res = await send(request(route.method, fill(route.template), { body, headers }));
        expect(res.status, `${route.method} ${route.template} with ${what}`).toBe(415);
        await expectEnvelope(res, 415, 'unsupported_media_type');
      }
    }
    expect(snapshotChanges(before, await storageSnapshot(ENV))).toEqual([]);
  });

  it('JSON with parameters or in upper case is accepted as JSON', async () => {
    for (const type of [
      'application/json; charset=utf-8',
      'Application/JSON',
      'APPLICATION/JSON; CHARSET=UTF-8',
    ]) {
      const res = await send(
        request('POST', '/v1/notifications', { body: '{}', headers: { 'Content-Type': type } }),
      );
      await expectEnvelope(res, 422, 'validation_error');
    }
  });

  it('malformed JSON is a 400 in the envelope, not a 500', async () => {
    for (const body of ['{', '{"a":', '\u0000', '\ufeff{}', 'null', '[]', '"x"', '{"a":1}x']) {
      const res = await send(request('POST', '/v1/notifications', { body, headers: jsonHeaders }));
      expect([400, 422], JSON.stringify(body)).toContain(res.status);
      await expectEnvelope(res, res.status);
    }
  });

  it('a malformed multipart form to a dashboard POST is a 400 page, not a 500', async () => {
    const session = await signToken(
      String(testEnv.SIGNING_SECRET),
      SESSION_PURPOSE,
      { sub: 'admin' },
      {
        expiresAtMs: Date.now() + 3600_000,
      },
    );
    const posts = ROUTES.filter((r) => r.method === 'POST' && r.template.startsWith('/dashboard/'));
    expect(posts.length).toBeGreaterThan(2);
    for (const route of posts) {
      for (const type of ['multipart/form-data', 'multipart/form-data; boundary=xyz']) {
        const res = await send(
          request('POST', fill(route.template), {
            key: null,
            body: 'enabled=on',
            headers: { 'Content-Type': type, Origin: ORIGIN, Cookie: `${SESSION_COOKIE}=${session}` },
          }),
        );
        const label = `${route.template} with ${type}`;
        // Logging out reads no form, so it just redirects; every other form POST must refuse it.
        if (route.template === '/dashboard/logout') expect(res.status, label).toBe(303);
        else {
          expect(res.status, label).toBe(400);
          expect(res.headers.get('Content-Type'), label).toMatch(/^text\/html/);
        }
      }
    }
  });
});

describe('unknown routes', () => {
  it('any method on a path Herald does not serve is 404 in the envelope', async () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/);
    const path = fc
      .tuple(
        fc.constantFrom(
          '/v2/',
          '/api/',
          '/.well-known/',
          '/v1/nothing-',
          '/admin/',
          '/.env',
          '/wp-login.php/',
          '/t/x/',
        ),
        fc.array(segment, { maxLength: 4 }),
      )
      .map(([prefix, rest]) => `${prefix}${rest.join('/')}`);
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE');
    await fc.assert(
      fc.asyncProperty(path, method, async (p, m) => {
        const res = await send(request(m, p, m === 'GET' ? {} : { body: '{}', headers: jsonHeaders }));
        const body = await expectEnvelope(res, 404, 'not_found');
        expect(body.error.message.length).toBeLessThan(300);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});

describe('security headers and CORS', () => {
  function expectHardened(res: Response, label: string) {
    expect(res.headers.get('Strict-Transport-Security'), label).toMatch(/max-age=\d{8,}/);
    expect(res.headers.get('X-Content-Type-Options'), label).toBe('nosniff');
    expect(res.headers.get('X-Frame-Options'), label).toBe('DENY');
    expect(res.headers.get('X-Request-Id'), label).toMatch(REQUEST_ID);
    // The inbox element's script is public and loaded by other sites' pages: `*`, never credentials.
    if (label.startsWith('GET /inbox.js ')) {
      expect(res.headers.get('Access-Control-Allow-Origin'), label).toBe('*');
      expect(res.headers.get('Access-Control-Allow-Credentials'), label).toBeNull();
      return;
    }
    for (const name of [
      'Access-Control-Allow-Origin',
      'Access-Control-Allow-Credentials',
      'Access-Control-Allow-Methods',
      'Access-Control-Allow-Headers',
    ])
      expect(res.headers.get(name), `${label}: ${name}`).toBeNull();
  }

  it('every route, with and without a key, from a foreign Origin: hardened headers and no CORS', async () => {
    for (const route of ROUTES) {
      for (const key of [ADMIN_KEY, null]) {
        const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? '{}' : undefined;
        const res = await send(
          request(route.method, fill(route.template), {
            key,
            body,
            headers: { Origin: 'https://evil.example', ...(body ? jsonHeaders : {}) },
          }),
        );
        expect(res.status).toBeLessThan(500);
        expectHardened(res, `${route.method} ${route.template} (${key ? 'key' : 'no key'}) → ${res.status}`);
      }
    }
  });

  it('a CORS preflight on any route is not granted', async () => {
    for (const template of new Set(ROUTES.map((r) => r.template))) {
      const res = await send(
        request('OPTIONS', fill(template), {
          key: null,
          headers: {
            Origin: 'https://evil.example',
            'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'authorization, content-type',
          },
        }),
      );
      // A browser grants a preflight only on a 2xx with Access-Control-Allow-Origin: neither is given.
      expect(res.status >= 200 && res.status < 300, `${template} answered ${res.status}`).toBe(false);
      expect(res.status, template).toBeLessThan(500);
      expectHardened(res, `OPTIONS ${template}`);
    }
  });

  it('a 413, a 415, the pixel, a redirect and the HTML pages are hardened too', async () => {
    const cases: [string, Request][] = [
      [
        '413',
        request('POST', '/v1/notifications', { body: paddedJson(MAX_BODY_BYTES + 1), headers: jsonHeaders }),
      ],
      [
        '415',
        request('POST', '/v1/notifications', { body: 'a=1', headers: { 'Content-Type': 'text/plain' } }),
      ],
      ['pixel', request('GET', '/t/o/x', { key: null })],
      ['click', request('GET', '/t/c/x', { key: null })],
      ['unsubscribe page', request('GET', '/u/x', { key: null })],
      ['dashboard redirect', request('GET', '/dashboard', { key: null })],
      ['dashboard login', request('GET', '/dashboard/login', { key: null })],
    ];
    for (const [label, req] of cases) expectHardened(await send(req), label);
  });

  it('an unexpected failure is a bare 500 envelope that says nothing inside, with every header', async () => {
    const failure = 'D1_ERROR: no such table: contacts at /srv/herald/secret-path.sql';
    // Every database fails so: the home database and each shard (the contact lives in one).
    const broken = (db: D1Database) =>
      new Proxy(db, {
        get(target, property) {
          if (property === 'prepare' || property === 'batch' || property === 'exec')
            return () => {
              throw new Error(failure);
            };
          return Reflect.get(target, property);
        },
      });
    const env = { ...ENV, ...everyDatabase(broken, ENV) } as Env;
    const res = await send(request('GET', `/v1/contacts/${PARAMS.userId}`), env);
    expect(res.status).toBe(500);
    expectHardened(res, '500');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
    expect(text).not.toContain('D1_ERROR');
  });
});
