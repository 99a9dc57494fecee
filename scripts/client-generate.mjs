// `npm run client:generate`: writes Herald's OpenAPI document (clients/js/openapi.json) and the
// typed client's types generated from it by openapi-typescript (clients/js/src/schema.d.ts). No
// server is needed: scripts/lib/openapi.mjs bundles the Hono app and asks it for the document
// GET /openapi.json serves. Both files are committed; test/node/client-generate.test.ts fails while
// they are stale, so run this after any change to a route or a schema.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { projectRoot } from './lib/local-bin.mjs';
import { DOCUMENT_PATH, generatedClientFiles, SCHEMA_PATH } from './lib/openapi.mjs';

const { document, schema } = await generatedClientFiles();
writeFileSync(DOCUMENT_PATH, document);
writeFileSync(SCHEMA_PATH, schema);
for (const [path, text] of [
  [DOCUMENT_PATH, document],
  [SCHEMA_PATH, schema],
]) {
  console.log(`wrote ${relative(projectRoot, path)} (${(text.length / 1024).toFixed(1)} KiB)`);
}
