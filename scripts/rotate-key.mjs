// `npm run rotate-key -- --url https://notify.example.com` re-encrypts every contact and delivery
// address under the first key of DATA_ENCRYPTION_KEY. The admin key comes from HERALD_ADMIN_KEY.
// Steps: 1) `node scripts/rotate-key.mjs --new-key` prints a fresh key; 2) put it FIRST in the
// secret (`wrangler secret put DATA_ENCRYPTION_KEY` with `new:…,old:…`) and deploy; 3) run this;
// 4) remove the old key from the secret once it reports everything rotated.
import { webcrypto } from 'node:crypto';

const args = process.argv.slice(2);
if (args.includes('--new-key')) {
  const raw = webcrypto.getRandomValues(new Uint8Array(32));
  const kid = `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
  console.log(`${kid}:${Buffer.from(raw).toString('base64')}`);
  process.exit(0);
}
const urlIndex = args.indexOf('--url');
const base = (urlIndex >= 0 ? args[urlIndex + 1] : process.env.HERALD_URL)?.replace(/\/+$/, '');
const key = process.env.HERALD_ADMIN_KEY;
if (!base || !key) {
  console.error('usage: HERALD_ADMIN_KEY=… npm run rotate-key -- --url https://your-herald   (or --new-key)');
  process.exit(2);
}
for (const table of ['contacts', 'deliveries', 'user_keys']) {
  let cursor = '';
  let rotated = 0;
  for (;;) {
    const res = await fetch(`${base}/v1/admin/rotate-key`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ table, cursor, limit: 200 }),
    });
    if (!res.ok) throw new Error(`${table}: ${res.status} ${await res.text()}`);
    const page = await res.json();
    rotated += page.rotated;
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  console.log(`${table}: ${rotated} rows re-encrypted`);
}
