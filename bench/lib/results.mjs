// Keeps bench/results.md: a header naming the machine and the commit, then one section per
// producer (`load` from bench/run.mjs, `meter` from the operation meter), each replaced in place
// so either can be re-run alone.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS_FILE = join(ROOT, 'bench', 'results.md');

const SECTIONS = ['load', 'meter', 'chaos'];

function git(args) {
  try {
    return execFileSync('git', args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

/** The machine and the code the figures come from. */
export function machine() {
  const cpuList = cpus();
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    cpu: cpuList[0]?.model?.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    commit: dirty ? `${commit} (with uncommitted changes)` : commit,
    date: new Date().toISOString(),
  };
}

function header(m) {
  return [
    '# Herald benchmark results',
    '',
    'Written by `npm run bench` (load against `wrangler dev` on 127.0.0.1, then the operation meter) and',
    'by the meter alone (`npm run bench:meter`). Local figures, workerd on this machine: the load runs',
    'use the sandbox providers, the meter the real provider modules against a fake network (each',
    "provider's documented success answer); production latency and throughput differ.",
    '',
    '| | |',
    '| --- | --- |',
    `| machine | ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB |`,
    `| node | ${m.node} |`,
    `| last written | ${m.date}, commit ${m.commit} (each section names its own) |`,
  ].join('\n');
}

const marker = (name, edge) => `<!-- ${name}:${edge} -->`;

/** Replaces (or adds) one section of bench/results.md and refreshes the header. */
export function writeSection(name, markdown, file = RESULTS_FILE) {
  if (!SECTIONS.includes(name)) throw new Error(`unknown section ${name}`);
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const bodies = {};
  for (const section of SECTIONS) {
    const start = existing.indexOf(marker(section, 'start'));
    const end = existing.indexOf(marker(section, 'end'));
    if (start >= 0 && end > start) {
      bodies[section] = existing.slice(start + marker(section, 'start').length, end).trim();
    }
  }
  const m = machine();
  // Each section says which code it measured: the two are often re-run separately.
  bodies[name] = `${markdown.trim()}\n\n_Measured at commit ${m.commit}, ${m.date}._`;
  const parts = [header(m)];
  for (const section of SECTIONS) {
    if (bodies[section] === undefined) continue;
    parts.push(`${marker(section, 'start')}\n${bodies[section]}\n${marker(section, 'end')}`);
  }
  writeFileSync(file, `${parts.join('\n\n')}\n`);
  return file;
}

/** The meter's output: its JSON beside it (bench/meter/last-run.json) and its section of results.md. */
export function writeMeterRun(markdown, report) {
  writeFileSync(join(ROOT, 'bench', 'meter', 'last-run.json'), `${JSON.stringify(report, null, 2)}\n`);
  return writeSection('meter', markdown);
}
