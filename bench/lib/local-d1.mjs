// Reads the local D1 databases of a running `wrangler dev` (the home database and every shard),
// for the bench's drain and topic phases: a query runs on each and their rows are concatenated.
//
// The databases are SQLite files in WAL mode under .wrangler/state; they are opened read-only with
// node:sqlite (a few ms a query), so polling does not take CPU from the workerd being measured.
// Without node:sqlite (Node < 22.13) each database is queried through `wrangler d1 execute --local`
// instead, which costs about 1.5 s of CPU per call.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { d1Databases } from '../../scripts/lib/databases.mjs';
import { ROOT } from './results.mjs';

const WRANGLER_JS = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const STATE_DIR = join('.wrangler', 'state', 'v3', 'd1', 'miniflare-D1DatabaseObject');

/** node:sqlite, without its one-time "experimental" warning; null where Node lacks it. */
async function loadSqlite() {
  const emitWarning = process.emitWarning;
  process.emitWarning = (warning, ...rest) => {
    if (!/SQLite/.test(String(warning?.message ?? warning))) emitWarning.call(process, warning, ...rest);
  };
  try {
    return await import('node:sqlite');
  } catch {
    return null;
  } finally {
    process.emitWarning = emitWarning;
  }
}

function run(command, args, options) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.once('error', (error) => resolve({ code: null, stdout, stderr: error.message }));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One query through `wrangler d1 execute --local` on one binding; 3 tries. */
async function wranglerQuery(app, binding, sql) {
  let failure = '';
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const result = await run(
      process.execPath,
      [WRANGLER_JS, 'd1', 'execute', binding, '--local', '--json', '--command', sql],
      { cwd: app, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
    );
    if (result.code === 0) return JSON.parse(result.stdout)[0]?.results ?? [];
    failure = `${result.code}: ${result.stderr || result.stdout}`;
  }
  throw new Error(`wrangler d1 execute ${binding} failed: ${failure}`);
}

/** A query on one SQLite file, read-only; retried when the writer holds it for a moment. */
function sqliteQuery(sqlite, file, sql) {
  let failure;
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    let db;
    try {
      db = new sqlite.DatabaseSync(file, { readOnly: true });
      db.exec('PRAGMA busy_timeout = 2000');
      return db.prepare(sql).all();
    } catch (error) {
      failure = error;
      // A file without the table (say, a database the app has not migrated yet) has no rows.
      if (/no such table/.test(String(error?.message))) return [];
    } finally {
      db?.close();
    }
  }
  throw new Error(`reading ${file}: ${failure?.message ?? failure}`);
}

/**
 * `{ query(sql) }` over every local database of the app in `app` (a folder with a wrangler.toml
 * whose stack has started): the rows of each database, concatenated.
 */
export async function localD1(app) {
  const sqlite = await loadSqlite();
  if (sqlite) {
    const dir = join(app, STATE_DIR);
    return {
      reader: 'node:sqlite',
      async query(sql) {
        if (!existsSync(dir)) return [];
        const files = readdirSync(dir).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
        return files.flatMap((f) => sqliteQuery(sqlite, join(dir, f), sql).map((row) => ({ ...row })));
      },
    };
  }
  const bindings = d1Databases(readFileSync(join(app, 'wrangler.toml'), 'utf8')).map((d) => d.binding);
  return {
    reader: 'wrangler d1 execute',
    async query(sql) {
      return (await Promise.all(bindings.map((binding) => wranglerQuery(app, binding, sql)))).flat();
    },
  };
}

/** Rows of `{ [key]: k, [value]: n }` from several databases, summed per key. */
export function sumBy(rows, key, value = 'n') {
  const out = {};
  for (const row of rows) out[row[key]] = (out[row[key]] ?? 0) + Number(row[value] ?? 0);
  return out;
}
