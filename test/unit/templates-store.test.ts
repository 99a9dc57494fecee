import { describe, expect, it } from 'vitest';
import { TemplatesStore } from '../../src/storage/templates-store';

/** An R2 stand-in that counts reads. */
function countingBucket(objects: Record<string, string>) {
  const counts = { get: 0, list: 0 };
  const bucket = {
    async get(key: string) {
      counts.get += 1;
      const body = objects[key];
      return body === undefined ? null : { json: async () => JSON.parse(body) };
    },
    async list({ prefix }: { prefix: string }) {
      counts.list += 1;
      const keys = Object.keys(objects).filter(
        (k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'),
      );
      return { objects: keys.map((key) => ({ key })), delimitedPrefixes: [] };
    },
  } as unknown as R2Bucket;
  return { bucket, counts };
}

describe('templates store', () => {
  it('reads each template from R2 at most once per minute, even when a batch asks for it at once', async () => {
    let now = 0;
    const { bucket, counts } = countingBucket({
      'templates/t/sms.json': JSON.stringify({ parts: { text: 'hi' } }),
    });
    const store = new TemplatesStore(bucket, () => now);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.get('t', 'sms')));
    expect(results.map((r) => r?.parts.text)).toEqual(Array(8).fill('hi'));
    expect(counts.get).toBe(1);
    expect(counts.list).toBe(1);
    now = 59_000;
    await store.get('t', 'sms');
    expect(counts.get).toBe(1);
    now = 61_000;
    await store.get('t', 'sms');
    expect(counts.get).toBe(2);
  });

  it('shares a read in flight only within one request, and the settled template with the isolate', async () => {
    const { bucket, counts } = countingBucket({
      'templates/t/sms.json': JSON.stringify({ parts: { text: 'hi' } }),
    });
    const isolate = new TemplatesStore(bucket, () => 0);
    const first = isolate.forRequest();
    const second = isolate.forRequest();
    // Two requests at once: each waits on its own read, never on a promise the other started.
    await Promise.all([first.get('t', 'sms'), first.get('t', 'sms'), second.get('t', 'sms')]);
    expect(counts.get).toBe(2);
    // Once settled, the value is the isolate's: a third request reads nothing.
    await isolate.forRequest().get('t', 'sms');
    expect(counts.get).toBe(2);
  });

  it('a locale variant that does not exist costs no R2 read', async () => {
    const { bucket, counts } = countingBucket({
      'templates/t/sms.json': JSON.stringify({ parts: { text: 'hi' } }),
      'templates/t/sms.fr.json': JSON.stringify({ parts: { text: 'salut' } }),
    });
    const store = new TemplatesStore(bucket, () => 0);
    expect((await store.get('t', 'sms', 'fr-CA'))?.parts.text).toBe('salut');
    expect((await store.get('t', 'sms', 'de'))?.parts.text).toBe('hi');
    expect(counts.get).toBe(2);
  });
});
