import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Config, lintFromString, loadConfig, type NormalizedProblem } from '@redocly/openapi-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../scripts/lib/local-bin.mjs';
import { DOCUMENT_PATH, type OpenApiDocument, openApiDocument } from '../../scripts/lib/openapi.mjs';

/**
 * The API's contract: the OpenAPI document GET /openapi.json serves (built here without a server,
 * as `npm run client:generate` builds it) passes Redocly's `recommended` rules with no error and no
 * warning, the ignore list aside (.redocly.lint-ignore.yaml, each entry with its reason), and every
 * operation keeps the rules written down in src/api/shared/responses.ts. A new route is held to
 * them the day it lands.
 */

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];
const KEY_ERRORS = ['401', '403', '429'];
/**
 * The ways in: an API key (on the Novu-compatible routes also as Novu's `ApiKey` scheme), an end
 * user's inbox token, or public (written out as `[]`).
 */
const API_KEY_SECURITY = [
  JSON.stringify([{ bearerAuth: [] }]),
  JSON.stringify([{ bearerAuth: [] }, { apiKeyAuth: [] }]),
];
const SECURITY = [...API_KEY_SECURITY, JSON.stringify([{ inboxToken: [] }]), JSON.stringify([])];

interface Operation {
  where: string;
  pointer: string;
  operationId?: unknown;
  tags?: unknown;
  security?: unknown;
  responses?: Record<string, unknown>;
}

let document: OpenApiDocument;
let config: Config;

beforeAll(async () => {
  document = await openApiDocument();
  // redocly.yaml and the ignore list next to it, as `npm run lint:openapi` reads them.
  config = await loadConfig({ configPath: join(projectRoot, 'redocly.yaml') });
});

/** Every problem Redocly finds in a document, ignored ones included, as `rule at pointer: message`. */
async function lint(doc: OpenApiDocument): Promise<NormalizedProblem[]> {
  // Linted as the committed file, so the ignore list (keyed by that path) applies to it.
  return lintFromString({ source: JSON.stringify(doc, null, 2), absoluteRef: DOCUMENT_PATH, config });
}

const shown = (problem: NormalizedProblem) =>
  `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`;

/** The problems the ignore list does not excuse. */
function unexcused(problems: NormalizedProblem[]): string[] {
  return problems
    .map((p) => config.styleguide.addProblemToIgnore({ ...p }))
    .filter((p) => !p.ignored)
    .map(shown);
}

/** The pointers the ignore list excuses for a rule. */
function ignored(ruleId: string): Set<string> {
  return config.styleguide.ignore[DOCUMENT_PATH]?.[ruleId] ?? new Set();
}

function operations(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({
      ...(item[method] as Omit<Operation, 'where' | 'pointer'>),
      where: `${method.toUpperCase()} ${path}`,
      pointer: `#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}`,
    })),
  );
}

describe("Redocly's recommended rules", () => {
  it('the document has no error and no warning, the ignore list aside', async () => {
    const problems = unexcused(await lint(document));
    // Each line names the rule and where: fix the route (see src/api/shared/responses.ts).
    expect(problems).toEqual([]);
  });

  it('every entry of the ignore list still excuses a real problem (a stale one is removed)', async () => {
    const found = new Set((await lint(document)).map((p) => `${p.ruleId} ${p.location[0]?.pointer}`));
    const entries = Object.entries(config.styleguide.ignore[DOCUMENT_PATH] ?? {}).flatMap(
      ([rule, pointers]) => [...pointers].map((pointer) => `${rule} ${pointer}`),
    );
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.length).toBeLessThanOrEqual(5);
    expect(entries.filter((entry) => !found.has(entry))).toEqual([]);
  });

  it('fails a document that breaks them: a lost operationId, an undescribed tag, no servers', async () => {
    const broken = structuredClone(document);
    const send = broken.paths['/v1/notifications']?.post;
    expect(send?.operationId).toBe('sendNotification');
    delete send?.operationId;
    broken.tags = broken.tags?.map(({ name }) => ({ name }));
    delete broken.servers;
    const problems = unexcused(await lint(broken)).join('\n');
    expect(problems).toContain('operation-operationId at #/paths/~1v1~1notifications/post/operationId');
    expect(problems).toContain('tag-description');
    expect(problems).toContain('no-empty-servers');
  });

  it('the committed document passes the Redocly CLI too (npm run lint:openapi)', () => {
    const cli = join(projectRoot, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
    const run = spawnSync(process.execPath, [cli, 'lint', '--format=json'], {
      cwd: projectRoot,
      encoding: 'utf8',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    });
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as {
      totals: { errors: number; warnings: number; ignored: number };
      problems: { ruleId: string; location: { pointer: string }[] }[];
    };
    const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}`);
    expect(problems, 'run npm run client:generate, then npm run lint:openapi').toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });
});

/** Operations without a camelCase operationId, or sharing one. */
function operationIdProblems(doc: OpenApiDocument): string[] {
  const ops = operations(doc);
  const ids = ops.map((op) => op.operationId).filter((id) => typeof id === 'string');
  return [
    ...ops
      .filter((op) => typeof op.operationId !== 'string' || !/^[a-z][a-zA-Z0-9]*$/.test(op.operationId))
      .map((op) => `${op.where}: operationId ${String(op.operationId)}`),
    ...ids.filter((id, index) => ids.indexOf(id) !== index).map((id) => `operationId ${String(id)} twice`),
  ];
}

/** Operations without a tag, or with one not declared (with a description) at the top. */
function tagProblems(doc: OpenApiDocument): string[] {
  const declared = new Map((doc.tags ?? []).map((tag) => [tag.name, tag.description ?? '']));
  return operations(doc).flatMap((op) => {
    const tags = Array.isArray(op.tags) ? (op.tags as string[]) : [];
    if (tags.length === 0) return [`${op.where}: no tag`];
    return tags.filter((tag) => !declared.get(tag)).map((tag) => `${op.where}: tag ${tag} not declared`);
  });
}

/** Operations whose security is not one of the three ways in. */
function securityProblems(doc: OpenApiDocument): string[] {
  return operations(doc)
    .filter((op) => !SECURITY.includes(JSON.stringify(op.security)))
    .map((op) => `${op.where}: security ${JSON.stringify(op.security)}`);
}

/** Operations without a 4xx (the ignore list aside), or API-key routes without their key's 401, 403, 429. */
function responseProblems(doc: OpenApiDocument): string[] {
  const excused = ignored('operation-4xx-response');
  return operations(doc).flatMap((op) => {
    const statuses = Object.keys(op.responses ?? {});
    const problems: string[] = [];
    if (!statuses.some((s) => s.startsWith('4')) && !excused.has(`${op.pointer}/responses`)) {
      problems.push(`${op.where}: no 4xx response`);
    }
    const missing = KEY_ERRORS.filter((s) => !statuses.includes(s));
    if (API_KEY_SECURITY.includes(JSON.stringify(op.security)) && missing.length > 0) {
      problems.push(`${op.where}: no ${missing.join(', ')} (KEY_ERRORS)`);
    }
    return problems;
  });
}

describe('every operation (the rules in src/api/shared/responses.ts)', () => {
  it('has a camelCase operationId, unique in the document', () => {
    expect(operationIdProblems(document)).toEqual([]);
  });

  it('has tags, each declared at the top with a description (src/api/openapi.ts)', () => {
    expect(tagProblems(document)).toEqual([]);
  });

  it('states its security: bearerAuth, inboxToken, or [] for a public route', () => {
    expect(securityProblems(document)).toEqual([]);
  });

  it("has a 4xx response (the ignore list aside); an API-key route has its key's 401, 403 and 429", () => {
    expect(responseProblems(document)).toEqual([]);
  });

  it('each check fails a route that breaks its rule', () => {
    const broken = structuredClone(document);
    const op = (path: string, method: string) => broken.paths[path]?.[method] as Record<string, unknown>;
    delete op('/v1/notifications', 'post').operationId;
    op('/v1/notifications/batch', 'post').operationId = 'getNotification';
    op('/v1/contacts/{userId}', 'get').tags = ['people'];
    delete op('/v1/templates', 'get').security;
    delete op('/t/c/{token}', 'get').security;
    const responses = op('/v1/notifications/{id}', 'get').responses as Record<string, unknown>;
    for (const status of Object.keys(responses)) if (status.startsWith('4')) delete responses[status];
    // Only what breaking these routes added: the checks above speak for the rest.
    const added = (check: (doc: OpenApiDocument) => string[]) => {
      const before = new Set(check(document));
      return check(broken).filter((problem) => !before.has(problem));
    };

    expect(added(operationIdProblems)).toEqual([
      'POST /v1/notifications: operationId undefined',
      'operationId getNotification twice',
    ]);
    expect(added(tagProblems)).toEqual(['GET /v1/contacts/{userId}: tag people not declared']);
    expect(added(securityProblems).sort()).toEqual([
      'GET /t/c/{token}: security undefined',
      'GET /v1/templates: security undefined',
    ]);
    expect(added(responseProblems)).toEqual([
      'GET /v1/notifications/{id}: no 4xx response',
      'GET /v1/notifications/{id}: no 401, 403, 429 (KEY_ERRORS)',
    ]);
  });
});
