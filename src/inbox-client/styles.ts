// The <herald-inbox> element's shadow-DOM styles. Themable from the page through
// --herald-accent, --herald-bg, --herald-fg and --herald-font, and the element's ::part()s.

const LIGHT =
  '--_bg: var(--herald-bg, #ffffff); --_fg: var(--herald-fg, #0f172a); --_accent: var(--herald-accent, #2563eb);';
const DARK =
  '--_bg: var(--herald-bg, #0f172a); --_fg: var(--herald-fg, #e2e8f0); --_accent: var(--herald-accent, #60a5fa);';

export const STYLES = `
:host { ${LIGHT} --_font: var(--herald-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  position: relative; display: inline-block; font-family: var(--_font); color: var(--_fg); line-height: 1.4; }
:host([theme="dark"]) { ${DARK} }
@media (prefers-color-scheme: dark) { :host([theme="auto"]) { ${DARK} } }
:host { --_muted: color-mix(in srgb, var(--_fg) 62%, transparent); --_line: color-mix(in srgb, var(--_fg) 13%, transparent); }
[hidden] { display: none !important; }
button { font: inherit; color: inherit; }
button:focus-visible, a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.bell { position: relative; display: inline-grid; place-items: center; width: 40px; height: 40px; padding: 0;
  border-radius: 999px; border: 1px solid var(--_line); background: var(--_bg); cursor: pointer; }
.bell svg { width: 20px; height: 20px; fill: currentColor; }
.badge { position: absolute; top: -4px; right: -4px; min-width: 18px; height: 18px; padding: 0 5px; box-sizing: border-box;
  border-radius: 9px; background: var(--_accent); color: #fff; font-size: 11px; font-weight: 600; line-height: 18px; text-align: center; }
.panel { position: absolute; right: 0; top: calc(100% + 8px); z-index: 1000; width: min(380px, 92vw); max-height: min(520px, 80vh);
  display: flex; flex-direction: column; background: var(--_bg); color: var(--_fg); border: 1px solid var(--_line);
  border-radius: 12px; box-shadow: 0 10px 30px rgb(0 0 0 / 0.18); overflow: hidden; }
.panel.start { left: 0; right: auto; }
.head { display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 12px 14px; border-bottom: 1px solid var(--_line); }
.head h2 { margin: 0; font-size: 15px; }
.link { background: none; border: 0; color: var(--_accent); cursor: pointer; font-size: 13px; padding: 4px; border-radius: 4px; }
.link:disabled { color: var(--_muted); cursor: default; }
.list { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
.item { position: relative; display: flex; gap: 10px; padding: 12px 14px 12px 18px; border-bottom: 1px solid var(--_line); }
.item.unread { background: color-mix(in srgb, var(--_accent) 8%, var(--_bg)); }
.item.unread::before { content: ""; position: absolute; left: 6px; top: 19px; width: 6px; height: 6px; border-radius: 3px; background: var(--_accent); }
.avatar { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; flex: none; }
.content { flex: 1; min-width: 0; }
.open { display: block; width: 100%; text-align: left; background: none; border: 0; padding: 0; cursor: pointer; border-radius: 4px; }
.title { display: block; font-weight: 600; font-size: 14px; overflow-wrap: anywhere; }
.body { display: block; margin-top: 2px; font-size: 13px; color: var(--_muted); white-space: pre-line; overflow-wrap: anywhere; }
.time { display: block; margin-top: 4px; font-size: 12px; color: var(--_muted); }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.actions a { font-size: 13px; color: var(--_accent); text-decoration: none; border: 1px solid var(--_line); border-radius: 6px; padding: 3px 8px; }
.archive { flex: none; align-self: flex-start; background: none; border: 0; color: var(--_muted); cursor: pointer;
  font-size: 18px; line-height: 1; padding: 2px 6px; border-radius: 4px; }
.archive:hover, .open:hover .title { color: var(--_accent); }
.empty { margin: 0; padding: 28px 14px; text-align: center; color: var(--_muted); font-size: 14px; }
.error { margin: 0; padding: 8px 14px; color: #dc2626; font-size: 13px; }
.more { display: block; margin: 8px auto; }
.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;
