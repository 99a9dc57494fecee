import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('the Worker bundle, gzipped as wrangler would upload it, stays within 450 KiB', () => {
  const result = spawnSync(process.execPath, ['scripts/bundle-budget.mjs'], { encoding: 'utf8' });
  const summary = /bundle: ([\d.]+) KiB, gzip ([\d.]+) KiB: (within|OVER) the 450\.0 KiB budget/.exec(
    result.stdout,
  );
  // The script's own verdict, read from its summary line: a missing line fails here too.
  expect(summary?.[3], `${result.stdout}\n${result.stderr}`).toBe('within');
  const gzipKiB = Number(summary?.[2]);
  // A real build of Hono, zod, LiquidJS and the providers: an empty or half-written bundle is an error too.
  expect(gzipKiB).toBeGreaterThan(100);
  expect(gzipKiB, result.stdout).toBeLessThanOrEqual(450);
  expect(result.status).toBe(0);
});
