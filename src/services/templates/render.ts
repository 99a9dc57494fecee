import { Liquid, type Template } from 'liquidjs';
import type { Channel } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import { type ChannelTemplate, TEMPLATE_PARTS } from '../../domain/template';

/**
 * Two engines: one escapes every output (HTML parts), one leaves text alone (subject, SMS, push,
 * chat, JSON). Both see only the render context's own properties and have no file system, so a
 * template cannot include files or reach prototypes.
 */
const baseOptions = {
  strictFilters: true,
  ownPropertyOnly: true,
  templates: {},
  jsTruthy: false,
  greedy: false,
} as const;
const htmlEngine = new Liquid({ ...baseOptions, outputEscape: 'escape' });
const textEngine = new Liquid(baseOptions);

const PARSE_CACHE_LIMIT = 500;
const parsed = new Map<string, Template[]>();

function parse(engine: Liquid, source: string, cacheKey: string): Template[] {
  const hit = parsed.get(cacheKey);
  if (hit) return hit;
  const templates = engine.parse(source);
  if (parsed.size >= PARSE_CACHE_LIMIT) parsed.delete(parsed.keys().next().value as string);
  parsed.set(cacheKey, templates);
  return templates;
}

/** A template that fails to parse: names the part and the line, for a 422 or a delivery reason. */
export class TemplateError extends Error {
  constructor(
    readonly part: string,
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

function describeLiquidError(part: string, error: unknown): TemplateError {
  const err = error as { message?: string; token?: { getPosition?: () => [number, number] } };
  const line = err.token?.getPosition?.()[0];
  const message = (err.message ?? String(error)).split('\n')[0] ?? 'invalid template';
  return new TemplateError(part, message, line);
}

/** Tags that would read another template file; there is no file system, so they can only fail. */
const FILE_TAGS = /\{%-?\s*(include|render|layout)\b/;

/** Checks that every part parses; throws TemplateError naming the part and line. */
export function validateTemplateParts(channel: Channel, parts: Record<string, string>): void {
  for (const spec of TEMPLATE_PARTS[channel]) {
    const source = parts[spec.name];
    if (source === undefined) {
      if (spec.required) throw new TemplateError(spec.name, `part "${spec.name}" is required for ${channel}`);
      continue;
    }
    const fileTag = FILE_TAGS.exec(source);
    if (fileTag) {
      const line = source.slice(0, fileTag.index).split('\n').length;
      throw new TemplateError(
        spec.name,
        `{% ${fileTag[1]} %} is not available: templates cannot read other files`,
        line,
      );
    }
    try {
      (spec.html ? htmlEngine : textEngine).parse(source);
    } catch (error) {
      throw describeLiquidError(spec.name, error);
    }
  }
}

/** Renders every part of a channel template into the message a provider sends. */
export async function renderTemplate(
  template: ChannelTemplate,
  context: Record<string, unknown>,
): Promise<RenderedMessage> {
  const out: Record<string, string> = {};
  for (const spec of TEMPLATE_PARTS[template.channel]) {
    const source = template.parts[spec.name];
    if (source === undefined) continue;
    const engine = spec.html ? htmlEngine : textEngine;
    try {
      const compiled = parse(
        engine,
        source,
        `${template.version}:${spec.html}:${spec.name}:${source.length}`,
      );
      out[spec.name] = (await engine.render(compiled, context)).trim();
    } catch (error) {
      throw describeLiquidError(spec.name, error);
    }
  }
  return toMessage(template.channel, out);
}

function toMessage(channel: Channel, parts: Record<string, string>): RenderedMessage {
  switch (channel) {
    case 'email':
      return { subject: parts.subject, text: parts.text, ...(parts.html ? { html: parts.html } : {}) };
    case 'sms':
    case 'chat':
      return { text: parts.text };
    case 'push':
      return { title: parts.title, body: parts.body };
    case 'webhook': {
      try {
        return { json: JSON.parse(parts.json ?? '') };
      } catch {
        throw new TemplateError('json', 'webhook template did not render valid JSON');
      }
    }
    case 'inapp':
      return inappMessage(parts);
  }
}

const MAX_INAPP_ACTIONS = 2;

/** An in-app item: title and body, and what the optional parts render (empty renders are absent). */
function inappMessage(parts: Record<string, string>): RenderedMessage {
  const actions = parts.actions ? parseJsonPart('actions', parts.actions) : undefined;
  if (
    actions !== undefined &&
    (!Array.isArray(actions) ||
      actions.length > MAX_INAPP_ACTIONS ||
      !actions.every(
        (a) =>
          typeof a === 'object' && a !== null && typeof a.label === 'string' && typeof a.url === 'string',
      ))
  ) {
    throw new TemplateError(
      'actions',
      `actions must render a JSON array of at most ${MAX_INAPP_ACTIONS} { "label", "url" }`,
    );
  }
  const url = safeLink(parts.url);
  const avatar = safeLink(parts.avatar);
  const buttons = ((actions ?? []) as { label: string; url: string }[]).flatMap(({ label, url: href }) => {
    const safe = safeLink(href);
    return safe ? [{ label, url: safe }] : [];
  });
  return {
    title: parts.title,
    body: parts.body,
    ...(url ? { url } : {}),
    ...(avatar ? { avatar } : {}),
    ...(buttons.length > 0 ? { actions: buttons } : {}),
    ...(parts.data ? { data: parseJsonPart('data', parts.data) } : {}),
  };
}

/**
 * A link an inbox may show: http(s), or a path on the app's own site. Anything else (`javascript:`,
 * `data:`, a protocol-relative `//host`) is left out, whatever the producer's data said.
 */
function safeLink(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (/^https?:\/\/[^\s]+$/i.test(value)) return value;
  if (/^\/(?!\/)[^\s]*$/.test(value)) return value;
  return undefined;
}

function parseJsonPart(part: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TemplateError(part, `${part} did not render valid JSON`);
  }
}

/** Renders a one-line Liquid text (a digest's key) over data; an error renders as empty. */
export async function renderLine(source: string, context: Record<string, unknown>): Promise<string> {
  try {
    return (await textEngine.parseAndRender(source, context)).trim();
  } catch {
    return '';
  }
}
