// The scripts call `wrangler` by name: make it the project's (and its Node 22 the one that runs
// it), whether they were started by npm (which already does this) or by hand with `node`.
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const bin = join(projectRoot, 'node_modules', '.bin');
if (!(process.env.PATH ?? '').split(delimiter).includes(bin)) {
  process.env.PATH = `${bin}${delimiter}${process.env.PATH ?? ''}`;
}
