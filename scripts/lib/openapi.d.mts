/** The OpenAPI document's shape, as far as the scripts and tests read it. */
export interface OpenApiDocument {
  openapi: string;
  info: Record<string, unknown>;
  servers?: Record<string, unknown>[];
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

/** clients/js/openapi.json, absolute. */
export const DOCUMENT_PATH: string;
/** clients/js/src/schema.d.ts, absolute. */
export const SCHEMA_PATH: string;
/** The OpenAPI document, exactly as GET /openapi.json serves it, built without a server. */
export function openApiDocument(): Promise<OpenApiDocument>;
/** The text of clients/js/openapi.json for a document. */
export function documentText(document: OpenApiDocument): string;
/** The text of clients/js/src/schema.d.ts for a document. */
export function schemaText(document: OpenApiDocument): Promise<string>;
/** Both generated files as `npm run client:generate` writes them. */
export function generatedClientFiles(): Promise<{ document: string; schema: string }>;
