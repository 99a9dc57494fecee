/** Reads templates/ into the R2 objects Herald reads (`templates/<type>/<channel>.json`). */
export function readTemplates(root: string): Promise<{ key: string; body: string }[]>;
/** Puts the templates into the local R2 bucket that `wrangler dev` uses; returns how many. */
export function uploadTemplatesLocally(root: string, configPath?: string): Promise<number>;
