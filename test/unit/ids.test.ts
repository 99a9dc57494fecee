import { describe, expect, it } from 'vitest';
import { idAfter, idBoundAt, idSequence, idTimeMs, newId } from '../../src/lib/ids';

describe('ids', () => {
  it('orders by creation time, then by the random part', () => {
    const early = newId('dlv', 1_700_000_000_000);
    const late = newId('dlv', 1_700_000_000_001);
    expect(early < late).toBe(true);
    expect(early >= idBoundAt('dlv', 1_700_000_000_000)).toBe(true);
    expect(early < idBoundAt('dlv', 1_700_000_000_001)).toBe(true);
  });

  it('reads back the creation instant of an id it made, and nothing else', () => {
    const at = Date.UTC(2026, 10, 28, 8, 0, 0, 123);
    expect(idTimeMs('ntf', newId('ntf', at))).toBe(at);
    expect(idTimeMs('ntf', newId('dlv', at))).toBeNull();
    expect(idTimeMs('ntf', 'order-123')).toBeNull();
    expect(idTimeMs('ntf', `${newId('ntf', at)}x`)).toBeNull();
    expect(idTimeMs('ntf', 'ntf_0000000000000000000000000I')).toBeNull();
  });

  it('counts the random part up in base 32, carrying into the next character', () => {
    const first = 'dlv_01jabcdefg000000000000000y';
    expect(idAfter(first, 1)).toBe('dlv_01jabcdefg000000000000000z');
    expect(idAfter(first, 2)).toBe('dlv_01jabcdefg0000000000000010');
    expect(idAfter(first, 32 * 32)).toBe('dlv_01jabcdefg000000000000010y');
  });

  it('makes a sequence that sorts in the order it was made and stays within one instant', () => {
    const first = newId('dlv', 1_700_000_000_000);
    const ids = idSequence(first, 300);
    expect(ids[0]).toBe(first);
    expect(new Set(ids).size).toBe(300);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(idTimeMs('dlv', id)).toBe(1_700_000_000_000);
  });

  it('refuses to count past the largest random part instead of changing the time', () => {
    expect(() => idAfter('dlv_01jabcdefgzzzzzzzzzzzzzzzz', 1)).toThrow(RangeError);
  });
});
