/** Reads templates/ into the R2 objects Herald reads (`templates/<type>/<channel>.json`). */
export function readTemplates(root: string): Promise<{ key: string; body: string }[]>;
