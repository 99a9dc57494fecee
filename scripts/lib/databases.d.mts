export function d1Databases(toml: string, env?: string): { binding: string; name: string }[];

/** The `SHARD_MAP` var of the top level or of `[env.<env>.vars]`, if set. */
export function shardMapOf(toml: string, env?: string): string | undefined;
