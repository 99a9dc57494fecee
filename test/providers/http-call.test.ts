// The one HTTP path against workerd's real fetch: what the runtime throws decides whether a failed
// call is retryable (the request provably never left) or an unknown outcome.
import { describe, expect, it } from 'vitest';
import { callHttp, isHttpAnswer } from '../../src/providers/http-call';
import { defaultDeps } from '../../src/providers/types';
import { expectOutcome } from './harness';

const LIMITS = { timeoutMs: 5_000, recipientsPerRequest: 1 };
const call = (url: string) => ({ url, method: 'POST' as const, headers: {}, body: '{}' });

describe('network failures of the real fetch', () => {
  it.each([
    ['an unparseable URL', 'not a url', /^network error: Invalid URL: not a url$/],
    [
      'a scheme fetch does not speak',
      'ftp://files.example/x',
      /^network error: Fetch API cannot load: \[url\]$/,
    ],
  ])('%s never left: retryable', async (_name, url, reason) => {
    const result = await callHttp(defaultDeps(), call(url), LIMITS);
    expect(isHttpAnswer(result)).toBe(false);
    if (!isHttpAnswer(result)) expectOutcome(result, { kind: 'retryable', reason });
  });

  it('a refused connection is unknown: workerd reports it as "Network connection lost.", like a reset after sending', async () => {
    const result = await callHttp(defaultDeps(), call('http://127.0.0.1:1/hook?token=s3cret'), LIMITS);
    expect(isHttpAnswer(result)).toBe(false);
    if (!isHttpAnswer(result))
      expectOutcome(result, { kind: 'unknown', reason: 'network error: Network connection lost.' });
    expect(JSON.stringify(result)).not.toContain('s3cret');
  });
});
