import { describe, expect, it } from 'vitest';
import { mergeTopicPages } from '../../src/domain/topics';
import { bucketOfId, derivedId, idTimeMs } from '../../src/lib/ids';

describe('mergeTopicPages', () => {
  const target = (topic: string, exclude: string[] = []) => ({ topic, exclude });

  it('takes each user once across topics, in user-id order', () => {
    const merged = mergeTopicPages(
      [target('a'), target('b')],
      [
        ['u1', 'u3'],
        ['u2', 'u3'],
      ],
      new Set(),
      10,
    );
    expect(merged).toEqual({ userIds: ['u1', 'u2', 'u3'], next: null });
  });

  it('cuts where the shortest full page ended, so no later subscriber of that topic is passed over', () => {
    // Topic a's page is full at u2: its next page starts after u2, so b's u3 and u4 wait for it.
    const merged = mergeTopicPages(
      [target('a'), target('b')],
      [
        ['u1', 'u2'],
        ['u3', 'u4'],
      ],
      new Set(),
      2,
    );
    expect(merged).toEqual({ userIds: ['u1', 'u2'], next: 'u2' });
  });

  it("applies each entry's exclusions to that entry, and the skip list to all", () => {
    const merged = mergeTopicPages(
      [target('a', ['u1']), target('b')],
      [
        ['u1', 'u2', 'u3'],
        ['u1', 'u4'],
      ],
      new Set(['u3']),
      10,
    );
    expect(merged.userIds).toEqual(['u1', 'u2', 'u4']);
    const alone = mergeTopicPages([target('a', ['u1'])], [['u1', 'u2']], new Set(), 10);
    expect(alone.userIds).toEqual(['u2']);
  });
});

describe('derivedId', () => {
  it('is the same for the same seed, names its bucket and its millisecond', () => {
    const seed = new Uint8Array(32).map((_, i) => i * 7);
    const a = derivedId('dlv', 1_700_000_000_000, 201, seed);
    expect(derivedId('dlv', 1_700_000_000_000, 201, seed)).toBe(a);
    expect(bucketOfId(a)).toBe(201);
    expect(idTimeMs('dlv', a)).toBe(1_700_000_000_000);
    expect(
      derivedId(
        'dlv',
        1_700_000_000_000,
        201,
        seed.map((b) => b + 1),
      ),
    ).not.toBe(a);
  });
});
