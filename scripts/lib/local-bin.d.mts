/** The repository's root folder; importing this module also puts node_modules/.bin first on PATH. */
export const projectRoot: string;
