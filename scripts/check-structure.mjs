// `npm run check:structure`: the two shape rules the linter cannot see.
// 1. No folder imports a folder that imports it back: at every level of `src/`, the sibling
//    folders (and the loose files of their parent, counted as one) form no import cycle.
// 2. No function in `src/` is longer than 80 lines, JSX page components aside (a capitalised
//    function in a .tsx file, whose length is markup, not logic).
// Exits 1 and lists every breach; prints a one-line summary otherwise.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
export const MAX_FUNCTION_LINES = 80;

function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function resolveImport(from, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  for (const candidate of [
    base,
    `${base}.ts`,
    `${base}.tsx`,
    join(base, 'index.ts'),
    join(base, 'index.tsx'),
  ]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {}
  }
  return undefined;
}

function parse(path) {
  const text = readFileSync(path, 'utf8');
  return ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, path.endsWith('x') ? 4 : 3);
}

function importsOf(file) {
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const target = resolveImport(file.fileName, node.moduleSpecifier.text);
      if (target) found.push(target);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function functionName(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

/** Every function longer than the limit, JSX page components aside. */
export function longFunctions(files) {
  const breaches = [];
  for (const file of files) {
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
        const end = file.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
        const name = functionName(node);
        const component = file.fileName.endsWith('.tsx') && /^[A-Z]/.test(name);
        if (end - start + 1 > MAX_FUNCTION_LINES && !component) {
          breaches.push(`${relative(root, file.fileName)}:${start} ${name} has ${end - start + 1} lines`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  return breaches;
}

/**
 * At every folder of `src/`, the group a file belongs to: the child folder it is in, or `.` for
 * the folder's own files. Imports between groups of one folder must form no cycle.
 */
export function folderCycles(edges) {
  const folders = new Set([src]);
  for (const [from] of edges) {
    for (let dir = dirname(from); dir.startsWith(src); dir = dirname(dir)) folders.add(dir);
  }
  const cycles = [];
  for (const folder of folders) {
    const group = (file) => {
      if (!file.startsWith(`${folder}${sep}`)) return undefined;
      const rest = relative(folder, file).split(sep);
      return rest.length === 1 ? '.' : rest[0];
    };
    const graph = new Map();
    for (const [from, to] of edges) {
      const a = group(from);
      const b = group(to);
      if (a === undefined || b === undefined || a === b) continue;
      if (!graph.has(a)) graph.set(a, new Map());
      if (!graph.get(a).has(b)) graph.get(a).set(b, `${relative(root, from)} -> ${relative(root, to)}`);
    }
    for (const [a, targets] of graph) {
      for (const [b, why] of targets) {
        if (a < b && graph.get(b)?.has(a)) {
          const name = relative(root, folder) || 'src';
          cycles.push(`${name}: ${a} <-> ${b} (${why}; ${graph.get(b).get(a)})`);
        } else if (a < b && reaches(graph, b, a)) {
          cycles.push(`${relative(root, folder)}: ${a} -> ${b} -> … -> ${a} (${why})`);
        }
      }
    }
  }
  return cycles;
}

function reaches(graph, from, to, seen = new Set()) {
  if (from === to) return true;
  seen.add(from);
  for (const next of graph.get(from)?.keys() ?? []) {
    if (!seen.has(next) && reaches(graph, next, to, seen)) return true;
  }
  return false;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = sourceFiles(src).map(parse);
  const edges = files.flatMap((file) => importsOf(file).map((target) => [file.fileName, target]));
  const breaches = [...folderCycles(edges), ...longFunctions(files)];
  for (const line of breaches) console.log(line);
  const verdict =
    breaches.length === 0
      ? `no folder cycles, no function over ${MAX_FUNCTION_LINES} lines`
      : `${breaches.length} breaches`;
  console.log(`${files.length} files, ${edges.length} imports: ${verdict}`);
  process.exit(breaches.length === 0 ? 0 : 1);
}
