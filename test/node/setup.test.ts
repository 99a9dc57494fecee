import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook', 'inapp'];
const FAKE_UUID = '3f0c7a52-8c1e-4a57-9b7e-2d64c1f0a9b1';
const PLACEHOLDER = '00000000-0000-0000-0000-000000000000';

/**
 * A stand-in for wrangler that records each call and keeps the account's resources in a JSON
 * file, answering like wrangler does when something already exists.
 */
const FAKE_WRANGLER = `#!/usr/bin/env node
const fs = require('node:fs');
const dir = __dirname;
const args = process.argv.slice(2);
fs.appendFileSync(dir + '/calls.log', JSON.stringify(args) + '\\n');
const statePath = dir + '/state.json';
const state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, 'utf8')) : { databases: [], buckets: [], queues: [] };
const save = () => fs.writeFileSync(statePath, JSON.stringify(state));
const [a, b, c] = args;
if (a === 'd1' && b === 'list') { process.stdout.write(JSON.stringify(state.databases)); process.exit(0); }
if (a === 'd1' && b === 'create') {
  if (state.databases.some((d) => d.name === c)) { console.error('A database with that name already exists'); process.exit(1); }
  state.databases.push({ uuid: '${FAKE_UUID}', name: c }); save(); console.log('Successfully created DB'); process.exit(0);
}
if (a === 'r2' && b === 'bucket') {
  const name = args[3];
  if (state.buckets.includes(name)) { console.error('The bucket you tried to create already exists'); process.exit(1); }
  state.buckets.push(name); save(); process.exit(0);
}
if (a === 'queues' && b === 'create') {
  if (state.queues.includes(c)) { console.error('A queue with this name already exists'); process.exit(1); }
  state.queues.push(c); save(); process.exit(0);
}
process.exit(0);
`;

let dir: string;
let config: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'herald-setup-'));
  writeFileSync(join(dir, 'wrangler'), FAKE_WRANGLER);
  chmodSync(join(dir, 'wrangler'), 0o755);
  config = join(dir, 'wrangler.toml');
  copyFileSync('wrangler.toml', config);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function setup(...args: string[]) {
  const result = spawnSync(process.execPath, ['scripts/setup.mjs', ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      HERALD_WRANGLER: join(dir, 'wrangler'),
      // templates-push.mjs calls `wrangler` from the PATH: the fake comes first.
      PATH: `${dir}:${process.env.PATH ?? ''}`,
    },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function calls(): string[][] {
  try {
    return readFileSync(join(dir, 'calls.log'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as string[]);
  } catch {
    return [];
  }
}

const commandsOf = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith('$ '))
    .map((line) => line.slice(2));

describe('npm run setup', () => {
  it('without --remote explains itself, points at npm start and runs nothing', () => {
    const { status, stdout } = setup();
    expect(status).toBe(0);
    expect(stdout).toContain('--remote');
    expect(stdout).toContain('npm start');
    expect(calls()).toEqual([]);
  });

  it('--remote --env staging --dry-run prints every command with staging names and runs none', () => {
    const { status, stdout } = setup('--remote', '--env', 'staging', '--dry-run', '--config', config);
    expect(status).toBe(0);
    // Every database, the archive bucket and the bindings are listed before anything would run.
    expect(stdout).toContain(
      '# D1 databases: DB (herald-staging), DB_0 (herald-staging-0), DB_1 (herald-staging-1)',
    );
    expect(stdout).toContain('# SHARD_MAP: 0-127:DB_0,128-255:DB_1');
    expect(stdout).toContain('TEMPLATES (herald-templates-staging), ARCHIVE (herald-archive-staging)');
    expect(stdout).toContain('QUEUE_EMAIL, DLQ_EMAIL');
    expect(commandsOf(stdout)).toEqual([
      'wrangler d1 create herald-staging',
      'wrangler d1 create herald-staging-0',
      'wrangler d1 create herald-staging-1',
      'wrangler r2 bucket create herald-templates-staging',
      'wrangler r2 bucket create herald-archive-staging',
      ...CHANNELS.flatMap((c) => [
        `wrangler queues create herald-${c}-staging`,
        `wrangler queues create herald-${c}-staging-dlq`,
      ]),
      ...['DB', 'DB_0', 'DB_1'].map(
        (binding) => `wrangler d1 migrations apply ${binding} --remote --env staging --config ${config}`,
      ),
      'node scripts/templates-push.mjs --remote --env staging',
    ]);
    expect(stdout).toContain('wrangler secret put ADMIN_API_KEY --env staging');
    expect(stdout).toContain('wrangler secret put SIGNING_SECRET --env staging');
    expect(stdout).toContain('wrangler deploy --env staging');
    expect(calls()).toEqual([]);
    expect(readFileSync(config, 'utf8')).toBe(readFileSync('wrangler.toml', 'utf8'));
  });

  it('the top-level environment keeps the unsuffixed names of wrangler.toml', () => {
    const { status, stdout } = setup('--remote', '--dry-run');
    expect(status).toBe(0);
    const commands = commandsOf(stdout);
    expect(commands).toContain('wrangler d1 create herald');
    expect(commands).toContain('wrangler r2 bucket create herald-templates');
    expect(commands).toContain('wrangler r2 bucket create herald-archive');
    expect(commands).toContain('wrangler queues create herald-webhook-dlq');
    expect(commands).toContain('wrangler d1 migrations apply DB --remote');
    expect(commands).toContain('node scripts/templates-push.mjs --remote');
    expect(stdout).toContain('wrangler secret put ADMIN_API_KEY    #');
  });

  it('each staging and production name it prints is bound in that environment of wrangler.toml', () => {
    const toml = readFileSync('wrangler.toml', 'utf8');
    for (const env of ['staging', 'production']) {
      const { stdout } = setup('--remote', '--env', env, '--dry-run');
      const section = toml.slice(toml.indexOf(`[env.${env}]`));
      for (const command of commandsOf(stdout).filter((c) => c.includes(' create '))) {
        const name = command.split(' ').at(-1) ?? '';
        expect(section, `${name} in [env.${env}]`).toMatch(new RegExp(`(name|queue) = "${name}"`));
      }
    }
  });

  it('an environment wrangler.toml does not define is refused before anything runs', () => {
    const { status, stderr } = setup('--remote', '--env', 'qa', '--dry-run');
    expect(status).toBe(2);
    expect(stderr).toContain('no [env.qa] section');
    expect(calls()).toEqual([]);
  });

  it('an unknown flag is refused with the usage', () => {
    const { status, stderr } = setup('--remote', '--force');
    expect(status).toBe(2);
    expect(stderr).toContain('unknown argument --force');
  });

  it('a real run creates everything, writes the database id into its environment only, and can run again', () => {
    const first = setup('--remote', '--env', 'staging', '--config', config);
    expect(first.status, first.stderr).toBe(0);
    const made = calls();
    expect(made).toContainEqual(['d1', 'create', 'herald-staging']);
    expect(made).toContainEqual(['r2', 'bucket', 'create', 'herald-templates-staging']);
    expect(made).toContainEqual(['r2', 'bucket', 'create', 'herald-archive-staging']);
    for (const c of CHANNELS) {
      expect(made).toContainEqual(['queues', 'create', `herald-${c}-staging`]);
      expect(made).toContainEqual(['queues', 'create', `herald-${c}-staging-dlq`]);
    }
    for (const name of ['herald-staging-0', 'herald-staging-1'])
      expect(made).toContainEqual(['d1', 'create', name]);
    for (const binding of ['DB', 'DB_0', 'DB_1'])
      expect(made).toContainEqual([
        'd1',
        'migrations',
        'apply',
        binding,
        '--remote',
        '--env',
        'staging',
        '--config',
        config,
      ]);
    // templates-push uploaded into the staging bucket.
    expect(
      made.some((a) => a[0] === 'r2' && a[1] === 'object' && a[3]?.startsWith('herald-templates-staging/')),
    ).toBe(true);

    const toml = readFileSync(config, 'utf8');
    const staging = toml.slice(toml.indexOf('[env.staging]'), toml.indexOf('[env.production]'));
    expect(staging).toContain(`database_id = "${FAKE_UUID}"`);
    expect(toml.slice(0, toml.indexOf('[env.staging]'))).toContain(`database_id = "${PLACEHOLDER}"`);
    expect(toml.slice(toml.indexOf('[env.production]'))).toContain(`database_id = "${PLACEHOLDER}"`);

    const again = setup('--remote', '--env', 'staging', '--config', config);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('herald-staging exists');
    expect(again.stdout).toContain('already exists: kept');
    // One create per database, all in the first run.
    expect(calls().filter((a) => a[0] === 'd1' && a[1] === 'create')).toHaveLength(3);
  });
});
