// The D1 databases a wrangler.toml gives an environment: the home database (`DB`) and its shards
// (`DB_0` …), so every script (npm start, setup, db:migrate) treats them all alike.

/**
 * `[{ binding, name }]` of the `[[d1_databases]]` blocks of the top level (no `env`) or of
 * `[[env.<env>.d1_databases]]`, in file order.
 */
export function d1Databases(toml, env) {
  const header = env ? `[[env.${env}.d1_databases]]` : '[[d1_databases]]';
  const out = [];
  const lines = toml.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== header) continue;
    const block = {};
    for (let j = i + 1; j < lines.length && !lines[j].trim().startsWith('['); j++) {
      const match = /^\s*(binding|database_name)\s*=\s*"([^"]*)"/.exec(lines[j]);
      if (match) block[match[1]] = match[2];
    }
    if (block.binding && block.database_name) out.push({ binding: block.binding, name: block.database_name });
  }
  return out;
}

/** The `SHARD_MAP` var of the top level (`[vars]`) or of `[env.<env>.vars]`, if set. */
export function shardMapOf(toml, env) {
  const header = env ? `[env.${env}.vars]` : '[vars]';
  const lines = toml.split('\n');
  const start = lines.findIndex((line) => line.trim() === header);
  if (start < 0) return undefined;
  for (let j = start + 1; j < lines.length && !lines[j].trim().startsWith('['); j++) {
    const match = /^\s*SHARD_MAP\s*=\s*"([^"]*)"/.exec(lines[j]);
    if (match) return match[1];
  }
  return undefined;
}
