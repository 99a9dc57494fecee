import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { readTemplates } from './scripts/lib/templates.mjs';

/**
 * Two projects: `workers` runs inside workerd with real D1, R2, Queues and Durable Objects;
 * `node` runs what must run in Node.js (scripts, the bundle budget, browser tests against
 * `wrangler dev`).
 */
export default defineConfig(async () => {
  const migrations = await readD1Migrations('./migrations');
  const templates = await readTemplates('./templates');
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: './wrangler.toml' },
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
                },
              },
            }),
          ],
          test: {
            name: 'workers',
            setupFiles: ['./test/setup/apply-migrations.ts'],
            include: ['test/**/*.test.ts'],
            exclude: ['test/node/**'],
            testTimeout: 20_000,
          },
        },
        {
          test: {
            name: 'node',
            environment: 'node',
            include: ['test/node/**/*.test.ts'],
            testTimeout: 300_000,
            hookTimeout: 300_000,
          },
        },
      ],
    },
  };
});
