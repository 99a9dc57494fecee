import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../src/lib/http';

describe('smoke', () => {
  it('parses retry-after', () => {
    expect(parseRetryAfter('12', 0)).toBe(12);
  });
});
