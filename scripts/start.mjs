// `npm start`: prepare the local stack (vars, D1 migrations, templates in local R2), then run
// `wrangler dev` on port 8787 with the sandbox providers.
import './lib/local-bin.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { d1Databases } from './lib/databases.mjs';
import { uploadTemplatesLocally } from './lib/templates.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
process.env.WRANGLER_SEND_METRICS = 'false';
// No network is needed locally: use miniflare's built-in request.cf instead of downloading one.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
const port = process.env.PORT ?? '8787';

if (!existsSync('.dev.vars')) {
  copyFileSync('.dev.vars.example', '.dev.vars');
  console.log('created .dev.vars from .dev.vars.example');
} else {
  // A newer Herald may need a variable an older .dev.vars lacks: add it, never change yours.
  const names = (text) =>
    new Set(
      text
        .split('\n')
        .map((l) => /^([A-Z0-9_]+)=/.exec(l)?.[1])
        .filter(Boolean),
    );
  const current = readFileSync('.dev.vars', 'utf8');
  const have = names(current);
  const missing = readFileSync('.dev.vars.example', 'utf8')
    .split('\n')
    .filter((line) => /^([A-Z0-9_]+)=/.test(line) && !have.has(/^([A-Z0-9_]+)=/.exec(line)?.[1]));
  if (missing.length > 0) {
    appendFileSync('.dev.vars', `${current.endsWith('\n') ? '' : '\n'}${missing.join('\n')}\n`);
    console.log(`added ${missing.length} new variable(s) to .dev.vars from .dev.vars.example`);
  }
}

const wrangler = (args, options = {}) => spawnSync('wrangler', args, { stdio: 'inherit', ...options });

for (const { binding } of d1Databases(readFileSync('wrangler.toml', 'utf8'))) {
  console.log(`applying D1 migrations to the local ${binding} ...`);
  const migrate = wrangler(['d1', 'migrations', 'apply', binding, '--local'], {
    env: { ...process.env, CI: 'true' },
  });
  if (migrate.status !== 0) process.exit(migrate.status ?? 1);
}

console.log('uploading templates/ to local R2 ...');
console.log(`uploaded ${await uploadTemplatesLocally(root)} templates`);

const dev = spawn('wrangler', ['dev', '--port', port, '--ip', '127.0.0.1', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => dev.kill(signal));
dev.on('exit', (code) => process.exit(code ?? 0));
