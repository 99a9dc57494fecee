import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { readTemplates } from './scripts/lib/templates.mjs';

export default defineConfig(async () => {
  const migrations = await readD1Migrations('./migrations');
  const templates = await readTemplates('./templates');
  return {
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
          },
        },
      }),
    ],
    test: {
      setupFiles: ['./test/setup/apply-migrations.ts'],
      include: ['test/**/*.test.ts'],
      testTimeout: 20_000,
    },
  };
});
