// `npm run db:migrate [-- --remote] [--env NAME]`: applies migrations/ to every D1 database of the
// environment (the home database and each shard), locally by default.
import './lib/local-bin.mjs';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { d1Databases } from './lib/databases.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const args = process.argv.slice(2);
const remote = args.includes('--remote');
const envIndex = args.indexOf('--env');
const env = envIndex >= 0 ? args[envIndex + 1] : undefined;
const databases = d1Databases(readFileSync('wrangler.toml', 'utf8'), env);
if (databases.length === 0) {
  console.error(`wrangler.toml names no D1 database${env ? ` for [env.${env}]` : ''}`);
  process.exit(2);
}
for (const { binding, name } of databases) {
  console.log(`applying migrations to ${binding} (${name}) ${remote ? 'remotely' : 'locally'} ...`);
  const result = spawnSync(
    'wrangler',
    ['d1', 'migrations', 'apply', binding, remote ? '--remote' : '--local', ...(env ? ['--env', env] : [])],
    { stdio: 'inherit', env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' } },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
}
