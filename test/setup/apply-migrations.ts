import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

const testEnv = env as unknown as {
  DB: D1Database;
  TEMPLATES: R2Bucket;
  TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1];
  TEST_TEMPLATES: { key: string; body: string }[];
};
await applyD1Migrations(testEnv.DB, testEnv.TEST_MIGRATIONS);
await Promise.all(testEnv.TEST_TEMPLATES.map(({ key, body }) => testEnv.TEMPLATES.put(key, body)));
