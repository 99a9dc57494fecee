import { describe, expect, it } from 'vitest';
import { addLatencies, type LatencyHistogram, summarizeLatency } from '../../src/storage/stats-repo';

/** A histogram as a database reports it: values cut to three significant digits. */
function histogram(values: number[]): LatencyHistogram {
  const cut = (ms: number) => {
    const f = ms < 1000 ? 1 : 10 ** (String(Math.trunc(ms)).length - 3);
    return Math.trunc(ms / f) * f;
  };
  const bins = new Map<number, number>();
  for (const v of values) bins.set(cut(v), (bins.get(cut(v)) ?? 0) + 1);
  return {
    count: values.length,
    sumMs: values.reduce((a, b) => a + b, 0),
    bins: [...bins].sort((a, b) => a[0] - b[0]),
  };
}

/** Nearest-rank percentile of the exact values. */
function exact(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p * sorted.length) / 100) - 1] as number;
}

describe('latency percentiles over several databases', () => {
  it('are the percentiles of all the samples, not of either database', () => {
    const first = [100, 200, 300, 400, 500, 600, 700, 800, 900];
    const second = [1, 2, 3];
    const merged = summarizeLatency(addLatencies([histogram(first), histogram(second)]));
    expect(merged).toEqual({ count: 12, sumMs: 4506, p50Ms: exact([...first, ...second], 50), p95Ms: 900 });
    expect(merged.p50Ms).toBe(300);
  });

  it('are within 1 % of the exact ones above a second', () => {
    const values = Array.from({ length: 500 }, (_, i) => 1000 + ((i * 7919) % 90_000));
    const merged = summarizeLatency(
      addLatencies([histogram(values.slice(0, 123)), histogram(values.slice(123))]),
    );
    for (const [p, got] of [
      [50, merged.p50Ms],
      [95, merged.p95Ms],
    ] as const) {
      const want = exact(values, p);
      expect(got).toBeLessThanOrEqual(want);
      expect(got).toBeGreaterThan(want * 0.99);
    }
  });

  it('are null without samples', () => {
    expect(summarizeLatency(addLatencies([histogram([]), histogram([])]))).toEqual({
      count: 0,
      sumMs: 0,
      p50Ms: null,
      p95Ms: null,
    });
  });
});
