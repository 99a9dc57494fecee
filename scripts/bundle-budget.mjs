// `node scripts/bundle-budget.mjs`: builds the Worker exactly as `wrangler deploy` would
// (`--dry-run --outdir`), gzips what would be uploaded and fails when it exceeds the budget.
// A smaller bundle starts faster on a cold isolate; the Workers limit is 3 MB (free) / 10 MB
// (paid) gzipped, so 450 KiB leaves room while catching a heavy dependency slipping in. It was
// 400 KiB until the Novu-compatible API, topics and the counters (Herald's own code, 386 → 412 KiB).
// The largest dead weight is zod's locales (364 KiB before gzip, kept whole because `z` is imported
// as a namespace): the first thing to cut if the budget binds again.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The budget for the gzipped upload, in bytes. */
export const BUDGET_BYTES = 450 * 1024;

/** What wrangler uploads: the modules, not source maps or the README it writes beside them. */
const UPLOADED = /\.(m?js|cjs|wasm|bin|txt|html|json)$/;

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * Builds the Worker into a temporary folder and measures it.
 * @returns {{ files: { name: string, bytes: number, gzipBytes: number }[], bytes: number, gzipBytes: number }}
 */
export function measureBundle({ env } = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'herald-bundle-'));
  try {
    // Wrangler's entry run by this very Node (the PATH's `node` may be older than wrangler needs).
    const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
    // `--env=` names the top-level environment, so wrangler does not warn that others exist.
    const args = [wrangler, 'deploy', '--dry-run', '--outdir', outdir, `--env=${env ?? ''}`];
    const build = spawnSync(process.execPath, args, {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    });
    if (build.status !== 0) {
      throw new Error(`wrangler deploy --dry-run failed:\n${build.stdout}\n${build.stderr}`);
    }
    const files = [];
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (UPLOADED.test(name) && name !== 'README.md') {
          const content = readFileSync(path);
          files.push({
            name: path.slice(outdir.length + 1),
            bytes: content.length,
            gzipBytes: gzipSync(content).length,
          });
        }
      }
    };
    walk(outdir);
    if (files.length === 0) throw new Error(`wrangler wrote no modules into ${outdir}`);
    return {
      files,
      bytes: files.reduce((s, f) => s + f.bytes, 0),
      gzipBytes: files.reduce((s, f) => s + f.gzipBytes, 0),
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function main() {
  const envIndex = process.argv.indexOf('--env');
  const env = envIndex >= 0 ? process.argv[envIndex + 1] : undefined;
  const { files, bytes, gzipBytes } = measureBundle({ env });
  for (const f of files) console.log(`  ${f.name}: ${kib(f.bytes)}, gzip ${kib(f.gzipBytes)}`);
  const verdict = gzipBytes <= BUDGET_BYTES ? 'within' : 'OVER';
  console.log(`bundle: ${kib(bytes)}, gzip ${kib(gzipBytes)}: ${verdict} the ${kib(BUDGET_BYTES)} budget`);
  return gzipBytes <= BUDGET_BYTES ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
