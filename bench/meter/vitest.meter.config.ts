import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import type { TestCase } from 'vitest/node';
import { readTemplates } from '../../scripts/lib/templates.mjs';
import { ROOT, writeMeterRun } from '../lib/results.mjs';

/**
 * The operation meter: its own config so it never runs under `npm test`. Same Worker, bindings and
 * migrations as the `workers` project in vitest.config.ts; only bench/meter/*.bench.test.ts.
 * `METER_NOTIFICATIONS` (env) sets the notifications per scenario (default 1000).
 */
const root = `${ROOT}/`;

/** Writes what the meter test left in its task meta into bench/results.md (Node side). */
const resultsWriter = {
  onTestCaseResult(testCase: TestCase) {
    const meta = testCase.meta() as { heraldMeter?: { markdown: string; report: unknown } };
    if (!meta.heraldMeter) return;
    console.log(`meter: wrote ${writeMeterRun(meta.heraldMeter.markdown, meta.heraldMeter.report)}`);
  },
};

export default defineConfig(async () => {
  const migrations = await readD1Migrations(`${root}migrations`);
  const templates = await readTemplates(`${root}templates`);
  return {
    root,
    plugins: [
      cloudflareTest({
        wrangler: { configPath: `${root}wrangler.toml` },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            TEST_TEMPLATES: templates,
            ENVIRONMENT: 'test',
            ADMIN_API_KEY: 'test-admin-key',
            PUBLIC_BASE_URL: 'https://herald.test',
            SIGNING_SECRET: 'test-signing-secret',
            DATA_ENCRYPTION_KEY: 'test1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
            BLIND_INDEX_KEY: 'dGVzdCBibGluZCBpbmRleCBrZXk6IDMyIGJ5dGVzISE=',
            METER_NOTIFICATIONS: process.env.METER_NOTIFICATIONS ?? '1000',
          },
        },
      }),
    ],
    test: {
      name: 'meter',
      setupFiles: [`${root}test/setup/apply-migrations.ts`],
      include: ['bench/meter/*.bench.test.ts'],
      testTimeout: 900_000,
      reporters: ['default', resultsWriter],
    },
  };
});
