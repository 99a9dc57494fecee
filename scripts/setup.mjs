// `npm run setup -- --remote [--env staging|production] [--dry-run]`: creates what Herald needs on
// Cloudflare (the D1 database, the R2 bucket, a queue and a dead-letter queue per channel), writes
// the new database id into wrangler.toml, applies the migrations, uploads the templates and lists
// the secrets to set. Safe to run again: what already exists is kept.
// Without --remote it only explains itself: the local stack needs no setup (`npm start`).
import { d1Databases, shardMapOf } from './lib/databases.mjs';
import './lib/local-bin.mjs';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook', 'inapp'];
/** The ids wrangler.toml ships with (distinct, so local databases are distinct): never real ones. */
const PLACEHOLDER_ID = /^00000000-0000-0000-0000-0000000000\d\d$/;

/** Secrets every deployment needs, then the optional ones; provider credentials come on top. */
const SECRETS = [
  ['ADMIN_API_KEY', 'the admin API key (required)'],
  ['SIGNING_SECRET', 'HMAC key for unsubscribe, tracking and callback links (required)'],
  [
    'DATA_ENCRYPTION_KEY',
    'field encryption keys `kid:base64key` (npm run rotate-key -- --new-key makes one)',
  ],
  [
    'BLIND_INDEX_KEY',
    'required: keys the suppression list, never rotated (openssl rand -base64 32 makes one; keep a copy)',
  ],
  ['ALERT_WEBHOOK_URL', 'optional: where the once-a-minute alert digest is posted'],
];

const USAGE = `Usage: npm run setup -- --remote [--env <name>] [--dry-run] [--config <wrangler.toml>]

Creates Herald's Cloudflare resources with wrangler (log in first: npx wrangler login):
  D1 database, R2 template bucket, herald-<channel> queues and their -dlq dead-letter queues,
  then applies the D1 migrations remotely, uploads templates/ and lists the secrets to set.

  --remote     required: this talks to your Cloudflare account
  --env NAME   an [env.NAME] section of wrangler.toml (staging, production): resource names get
               the suffix -NAME (herald-NAME, herald-templates-NAME, herald-email-NAME ...)
  --dry-run    print the exact commands, run nothing
  --config     another wrangler.toml (default: the repository's)

Local development needs none of this: \`npm start\` applies the migrations to the local D1,
uploads the templates to the local R2 bucket and runs \`wrangler dev\` with sandbox providers.`;

/** Parses argv into options; throws on anything unknown. */
export function parseArgs(argv) {
  const options = {
    remote: false,
    dryRun: false,
    env: undefined,
    config: join(root, 'wrangler.toml'),
    help: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--remote') options.remote = true;
    else if (arg === '--dry-run') options.dryRun = true;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else if (arg === '--env' || arg === '-e') options.env = argv[++i];
    else if (arg.startsWith('--env=')) options.env = arg.slice('--env='.length);
    else if (arg === '--config' || arg === '-c') options.config = resolve(argv[++i] ?? '');
    else throw new Error(`unknown argument ${arg}`);
  }
  if (options.env === '') options.env = undefined;
  return options;
}

/** The environments wrangler.toml defines (`[env.NAME]` or `[env.NAME.something]`). */
export function environmentsIn(toml) {
  return [...new Set([...toml.matchAll(/^\s*\[+env\.([A-Za-z0-9_-]+)[\].]/gm)].map((m) => m[1]))];
}

/** Resource names for an environment: the top-level names, suffixed with -<env>. */
export function resourceNames(env) {
  const suffix = env ? `-${env}` : '';
  return {
    database: `herald${suffix}`,
    bucket: `herald-templates${suffix}`,
    archive: `herald-archive${suffix}`,
    queues: CHANNELS.flatMap((c) => [`herald-${c}${suffix}`, `herald-${c}${suffix}-dlq`]),
  };
}

/** Replaces the placeholder database_id of the block naming `database`; returns null if not found. */
export function withDatabaseId(toml, database, id) {
  const block = new RegExp(
    `(database_name\\s*=\\s*"${database.replace(/[-]/g, '\\-')}"\\s*\\n(?:\\s*#[^\\n]*\\n)*\\s*database_id\\s*=\\s*")([^"]*)(")`,
  );
  const match = block.exec(toml);
  if (!match) return null;
  return { previous: match[2], toml: toml.replace(block, `$1${id}$3`) };
}

/** How to run wrangler: `HERALD_WRANGLER` (tests), else the project's, run by this Node. */
function wranglerCommand() {
  if (process.env.HERALD_WRANGLER) return { command: process.env.HERALD_WRANGLER, prefix: [] };
  const local = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
  return existsSync(local)
    ? { command: process.execPath, prefix: [local] }
    : { command: 'wrangler', prefix: [] };
}

const quote = (arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** Creates one D1 database unless it exists, and writes its id into wrangler.toml. */
function createDatabase(name, listed, { wrangler, list, dry, options }) {
  let database = listed.find((d) => d.name === name);
  if (database) {
    console.log(`  ${name} exists (${database.uuid})`);
  } else {
    wrangler(['d1', 'create', name], { capture: true, exists: /already exists/i });
    if (!dry) {
      database = list().find((d) => d.name === name);
      if (!database) throw new Error(`created ${name} but cannot find its id`);
    }
  }
  const where = `wrangler.toml${options.env ? ` [env.${options.env}]` : ''}`;
  if (dry) {
    console.log(`# then write the new database's id into ${where} (database_name = "${name}")`);
    return;
  }
  const toml = readFileSync(options.config, 'utf8');
  const updated = withDatabaseId(toml, name, database.uuid);
  if (!updated) throw new Error(`${where} has no d1_databases entry with database_name = "${name}"`);
  if (updated.previous === database.uuid) {
    console.log(`  ${where} already names ${database.uuid}`);
  } else if (!PLACEHOLDER_ID.test(updated.previous)) {
    throw new Error(
      `${where} names database ${updated.previous}, but ${name} is ${database.uuid}: fix it by hand`,
    );
  } else {
    writeFileSync(options.config, updated.toml);
    console.log(`  wrote database_id = "${database.uuid}" into ${where}`);
  }
}

function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help || !options.remote) {
    console.log(USAGE);
    return 0;
  }
  if (!existsSync(options.config)) {
    console.error(`no wrangler config at ${options.config}`);
    return 2;
  }
  const defined = environmentsIn(readFileSync(options.config, 'utf8'));
  if (options.env && !defined.includes(options.env)) {
    console.error(
      `wrangler.toml has no [env.${options.env}] section (defined: ${defined.join(', ') || 'none'})`,
    );
    return 2;
  }

  const names = resourceNames(options.env);
  const envArgs = options.env ? ['--env', options.env] : [];
  const configArgs = options.config === join(root, 'wrangler.toml') ? [] : ['--config', options.config];
  const { command: wranglerBin, prefix: wranglerPrefix } = wranglerCommand();
  const dry = options.dryRun;
  const childEnv = { ...process.env, WRANGLER_SEND_METRICS: 'false' };

  /**
   * Prints the command; runs it unless --dry-run. `exists` matches output meaning "already there";
   * captured commands get no stdin, so wrangler never stops at an interactive question.
   */
  const step = (display, command, args, { exists, capture, quiet } = {}) => {
    console.log(`$ ${display.map(quote).join(' ')}`);
    if (dry) return { ok: true, stdout: '' };
    const result = spawnSync(command, args, {
      cwd: root,
      env: childEnv,
      encoding: 'utf8',
      stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    if (capture && (!quiet || result.status !== 0) && !exists?.test(output)) process.stdout.write(output);
    if (result.status === 0) return { ok: true, stdout: result.stdout ?? '' };
    if (exists?.test(output)) {
      console.log('  (already exists: kept)');
      return { ok: true, stdout: '' };
    }
    throw new Error(`failed (${result.status ?? result.signal}): ${display.join(' ')}`);
  };
  const wrangler = (args, opts) =>
    step(['wrangler', ...args], wranglerBin, [...wranglerPrefix, ...args], opts);

  console.log(
    `${dry ? 'Dry run: these are the commands' : 'Setting up'} for ${options.env ? `environment "${options.env}"` : 'the top-level environment'}.\n`,
  );

  const toml = readFileSync(options.config, 'utf8');
  const databases = d1Databases(toml, options.env);
  if (databases.length === 0) {
    console.error(`wrangler.toml names no D1 database${options.env ? ` for [env.${options.env}]` : ''}`);
    return 2;
  }
  console.log(`# D1 databases: ${databases.map((d) => `${d.binding} (${d.name})`).join(', ')}`);
  console.log(`# SHARD_MAP: ${shardMapOf(toml, options.env) ?? 'unset (every bucket in DB)'}`);
  const list = () =>
    JSON.parse(wrangler(['d1', 'list', '--json'], { capture: true, quiet: true }).stdout || '[]');
  const listed = dry ? [] : list();
  for (const { name } of databases) createDatabase(name, listed, { wrangler, list, dry, options });

  console.log(`\n# R2 buckets: TEMPLATES (${names.bucket}), ARCHIVE (${names.archive})`);
  wrangler(['r2', 'bucket', 'create', names.bucket], { capture: true, exists: /already exists/i });
  wrangler(['r2', 'bucket', 'create', names.archive], { capture: true, exists: /already exists/i });

  console.log(
    `\n# Queues: one per channel, each with its dead-letter queue (${CHANNELS.map((c) => `QUEUE_${c.toUpperCase()}, DLQ_${c.toUpperCase()}`).join(', ')})`,
  );
  for (const queue of names.queues) {
    wrangler(['queues', 'create', queue], { capture: true, exists: /already (exists|taken)/i });
  }

  console.log('\n# D1 migrations, on every database');
  for (const { binding } of databases) {
    wrangler(['d1', 'migrations', 'apply', binding, '--remote', ...envArgs, ...configArgs]);
  }

  console.log('\n# Templates');
  step(['node', 'scripts/templates-push.mjs', '--remote', ...envArgs], process.execPath, [
    join(root, 'scripts', 'templates-push.mjs'),
    '--remote',
    ...envArgs,
  ]);

  console.log('\n# Secrets to set (each prompts for its value):');
  for (const [name, meaning] of SECRETS) {
    console.log(`wrangler secret put ${name}${options.env ? ` --env ${options.env}` : ''}    # ${meaning}`);
  }
  console.log(
    '# plus the credentials of every provider named in <CHANNEL>_PROVIDERS (README: Providers); GET /v1/admin/providers shows what is missing.',
  );
  console.log(
    `# when you rotate SIGNING_SECRET later: wrangler secret put SIGNING_SECRET_PREVIOUS${options.env ? ` --env ${options.env}` : ''} with the old value (comma-separated, newest first), kept for at least 60 days, so links already sent keep working.`,
  );
  console.log(`\nThen deploy: wrangler deploy${options.env ? ` --env ${options.env}` : ''}`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
