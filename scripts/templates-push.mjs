// `npm run templates:push` uploads templates/ to local R2; with `-- --remote`, to the production
// bucket named in wrangler.toml (`--env staging` selects that environment's bucket).
import './lib/local-bin.mjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTemplates, uploadTemplatesLocally } from './lib/templates.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
process.env.WRANGLER_SEND_METRICS = 'false';
// No network is needed locally: use miniflare's built-in request.cf instead of downloading one.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
const args = process.argv.slice(2);
const remote = args.includes('--remote');
const envIndex = args.indexOf('--env');
const envName = envIndex >= 0 ? args[envIndex + 1] : undefined;
const bucket = process.env.TEMPLATES_BUCKET ?? (envName ? `herald-templates-${envName}` : 'herald-templates');

if (!remote) {
  console.log(`uploaded ${await uploadTemplatesLocally(root)} templates to local R2`);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'herald-templates-'));
  try {
    for (const { key, body } of await readTemplates(join(root, 'templates'))) {
      const file = join(dir, 'object.json');
      writeFileSync(file, body);
      const put = spawnSync(
        'wrangler',
        [
          'r2',
          'object',
          'put',
          `${bucket}/${key}`,
          '--file',
          file,
          '--content-type',
          'application/json',
          '--remote',
        ],
        { stdio: 'inherit' },
      );
      if (put.status !== 0) process.exit(put.status ?? 1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
