import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

const testEnv = env as unknown as Record<string, unknown> & {
  TEMPLATES: R2Bucket;
  TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1];
  TEST_TEMPLATES: { key: string; body: string }[];
};
// Every database: the home database and each shard wrangler.toml binds (DB_0, DB_1 locally).
const databases = Object.keys(testEnv).filter((name) => /^DB(_\d+)?$/.test(name));
for (const name of databases) await applyD1Migrations(testEnv[name] as D1Database, testEnv.TEST_MIGRATIONS);
await Promise.all(testEnv.TEST_TEMPLATES.map(({ key, body }) => testEnv.TEMPLATES.put(key, body)));
