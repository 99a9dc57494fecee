// `npm run shards:move -- --bucket 7 --to DB_1 [--remote]` moves one bucket of users to another
// database through the running Worker: lock, copy, switch, clean (POST /v1/admin/shards/move),
// each step called again while it answers `more`, waiting when it says so. Locally it talks to
// `npm start` (http://localhost:$PORT, the local admin key); with --remote to --url or HERALD_URL
// with HERALD_ADMIN_KEY. `--abort` undoes a move that has not switched yet; `--status` prints
// where every bucket lives.
const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const remote = args.includes('--remote');
const base = (
  option('url') ?? (remote ? process.env.HERALD_URL : `http://localhost:${process.env.PORT ?? 8787}`)
)?.replace(/\/+$/, '');
const key = process.env.HERALD_ADMIN_KEY ?? (remote ? undefined : 'local-admin-key');
const usage =
  'usage: npm run shards:move -- --bucket <0-255> --to DB_<n> [--remote] [--url https://your-herald] [--abort]\n' +
  '       npm run shards:move -- --status [--remote]\n' +
  '(--remote needs HERALD_ADMIN_KEY, and --url or HERALD_URL)';
if (!base || !key) {
  console.error(usage);
  process.exit(2);
}

async function call(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (args.includes('--status')) {
  const layout = await call('GET', '/v1/admin/shards');
  for (const db of layout.databases) console.log(`${db.name}: ${db.count} buckets ${db.buckets}`);
  for (const m of layout.moves.filter((m) => m.phase !== 'done'))
    console.log(`moving: bucket ${m.bucket} ${m.from} → ${m.to} (${m.phase})`);
  process.exit(0);
}

const bucket = Number(option('bucket'));
const to = option('to');
if (!Number.isInteger(bucket) || bucket < 0 || bucket > 255 || !to) {
  console.error(usage);
  process.exit(2);
}

const steps = args.includes('--abort') ? ['abort'] : ['lock', 'copy', 'switch', 'clean'];
for (const step of steps) {
  for (;;) {
    const answer = await call('POST', '/v1/admin/shards/move', { bucket, to, step });
    const rows = answer.rows ? ` rows ${JSON.stringify(answer.rows)}` : '';
    console.log(`${step}: bucket ${answer.bucket} ${answer.from} → ${answer.to}, ${answer.phase}${rows}`);
    if (!answer.more) break;
    await sleep((answer.waitSeconds ?? 0) * 1000);
  }
}
