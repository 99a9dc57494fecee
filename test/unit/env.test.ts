import { describe, expect, it } from 'vitest';
import { EnvError, parseEnv } from '../../src/config/env';
import { api, json, testEnv } from '../helpers/api';

type ErrorBody = { error: { code: string; message: string; details: string[] } };

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseEnv(raw);
  } catch (error) {
    if (error instanceof EnvError) return error.problems;
    throw error;
  }
  return [];
}

describe('the env is parsed once at the edge of the Worker', () => {
  it('the test env parses, and test-only bindings are dropped', () => {
    const env = parseEnv({ ...testEnv });
    expect(env.DB).toBe(testEnv.DB);
    expect(env.ENVIRONMENT).toBe('test');
    expect('TEST_MIGRATIONS' in env).toBe(false);
  });

  it('the same env object is parsed once', () => {
    const raw = { ...testEnv };
    expect(parseEnv(raw)).toBe(parseEnv(raw));
  });

  it('a missing binding is named', () => {
    const { QUEUE_SMS: _sms, ...raw } = testEnv;
    expect(problemsOf(raw)).toEqual(['QUEUE_SMS must be a Queue binding (see wrangler.toml)']);
  });

  it('a binding of the wrong kind is named', () => {
    expect(problemsOf({ ...testEnv, DB: 'not a database' })).toEqual([
      'DB must be a D1 binding (see wrangler.toml)',
    ]);
  });

  it.each([
    ['BACKLOG_ALERT_SECONDS', 'soon', 'BACKLOG_ALERT_SECONDS must be a number'],
    ['SANDBOX_FAIL_RATE', '1.5', 'SANDBOX_FAIL_RATE must be between 0 and 1'],
    ['SANDBOX_TIMEOUT_RATE', '2', 'SANDBOX_TIMEOUT_RATE must be between 0 and 1'],
    ['PUBLIC_BASE_URL', 'ftp://herald.test', 'PUBLIC_BASE_URL must be an http(s) origin'],
    [
      'EMAIL_PROVIDERS',
      'resend;sendgrid',
      'EMAIL_PROVIDERS must be a comma-separated list of provider names',
    ],
  ])('a malformed %s is named', (name, value, problem) => {
    expect(problemsOf({ ...testEnv, [name]: value })).toEqual([problem]);
  });

  it('an unknown ENVIRONMENT is refused, so a typo never turns production rules off or on', () => {
    expect(problemsOf({ ...testEnv, ENVIRONMENT: 'prod' })[0]).toMatch(/^ENVIRONMENT /);
  });

  it.each([['production'], ['staging'], [undefined]])(
    'the env refuses ENVIRONMENT=%s without BLIND_INDEX_KEY, naming it',
    (environment) => {
      const { BLIND_INDEX_KEY: _key, ...raw } = testEnv;
      const problems = problemsOf({ ...raw, ENVIRONMENT: environment });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^BLIND_INDEX_KEY is required when ENVIRONMENT is /);
      // and with one, it starts
      expect(problemsOf({ ...testEnv, ENVIRONMENT: environment })).toEqual([]);
    },
  );

  it('development and test start without BLIND_INDEX_KEY (they fall back to the development key)', () => {
    const { BLIND_INDEX_KEY: _key, ...raw } = testEnv;
    for (const environment of ['development', 'test']) {
      expect(problemsOf({ ...raw, ENVIRONMENT: environment })).toEqual([]);
    }
  });

  it('a BLIND_INDEX_KEY shorter than 32 bytes of base64 is refused without echoing it', () => {
    const problems = problemsOf({ ...testEnv, BLIND_INDEX_KEY: 'c2hvcnQta2V5' });
    expect(problems).toEqual([
      'BLIND_INDEX_KEY must be at least 32 bytes of base64 (openssl rand -base64 32)',
    ]);
  });

  it('a production Worker without BLIND_INDEX_KEY answers 500 naming it', async () => {
    const { BLIND_INDEX_KEY: _key, ...raw } = testEnv;
    const res = await api('GET', '/healthz', undefined, {
      env: { ...raw, ENVIRONMENT: 'production' } as typeof testEnv,
    });
    expect(res.status).toBe(500);
    const body = await json<ErrorBody>(res);
    expect(body.error.details).toEqual([expect.stringMatching(/^BLIND_INDEX_KEY is required/)]);
  });

  it('an empty var counts as not set', () => {
    expect(parseEnv({ ...testEnv, BACKLOG_ALERT_SECONDS: '' }).BACKLOG_ALERT_SECONDS).toBeUndefined();
  });

  it('a Worker with a broken configuration answers 500 naming the variable, never its value', async () => {
    const res = await api('GET', '/healthz', undefined, {
      env: { ...testEnv, SANDBOX_429_RATE: 'secret-looking-value' } as typeof testEnv,
    });
    expect(res.status).toBe(500);
    const body = await json<ErrorBody>(res);
    expect(body.error.code).toBe('misconfigured');
    expect(body.error.details).toEqual(['SANDBOX_429_RATE must be a number']);
    expect(JSON.stringify(body)).not.toContain('secret-looking-value');
  });
});
