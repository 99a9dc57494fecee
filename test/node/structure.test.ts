import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { folderCycles } from '../../scripts/check-structure.mjs';

describe('the shape of src/', () => {
  it('no folder imports a folder that imports it back, and no function is over 80 lines', () => {
    const result = spawnSync(process.execPath, ['scripts/check-structure.mjs'], { encoding: 'utf8' });
    expect(result.stdout).toMatch(/no folder cycles, no function over 80 lines/);
    expect(result.status, result.stdout).toBe(0);
  });

  it('the check sees a folder cycle when there is one', () => {
    const src = join(process.cwd(), 'src');
    const edges = [
      [join(src, 'api', 'a.ts'), join(src, 'services', 'b.ts')],
      [join(src, 'services', 'c.ts'), join(src, 'api', 'd.ts')],
    ];
    expect(folderCycles(edges)).toEqual([
      'src: api <-> services (src/api/a.ts -> src/services/b.ts; src/services/c.ts -> src/api/d.ts)',
    ]);
  });
});
