import { CHANNELS } from '../../domain/channels';

/** One colour per channel, shared by the chart bars and their legend. */
export const CHANNEL_COLOURS: Record<(typeof CHANNELS)[number], string> = {
  email: '#2563eb',
  sms: '#16a34a',
  push: '#d97706',
  chat: '#9333ea',
  webhook: '#db2777',
  inapp: '#0891b2',
};

/**
 * The dashboard's whole stylesheet, a constant (never data), served inline with the response's
 * CSP nonce. Badge colours follow the status: blue in flight, green engaged, amber waiting,
 * red failed, grey ended without sending.
 */
export const STYLESHEET = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1f2937; --muted: #6b7280; --line: #e5e7eb;
  --accent: #2563eb; --nav: #111827; --nav-text: #e5e7eb; --danger: #dc2626;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 15px;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1115; --panel: #171a21; --text: #e5e7eb; --muted: #9ca3af; --line: #2a2f3a;
    --accent: #60a5fa; --nav: #05070a; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); line-height: 1.45; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
pre { white-space: pre-wrap; word-break: break-word; background: var(--bg); border: 1px solid var(--line);
  border-radius: 6px; padding: 10px; margin: 6px 0; max-height: 420px; overflow: auto; }
header.nav { background: var(--nav); color: var(--nav-text); }
header.nav .inner { max-width: 1200px; margin: 0 auto; display: flex; flex-wrap: wrap; align-items: center;
  gap: 4px 18px; padding: 10px 20px; }
header.nav .brand { font-weight: 700; letter-spacing: .02em; color: #fff; margin-right: 8px; }
header.nav a { color: var(--nav-text); padding: 4px 2px; border-bottom: 2px solid transparent; }
header.nav a.active { color: #fff; border-bottom-color: #60a5fa; }
header.nav form { margin-left: auto; }
header.nav button { background: transparent; color: var(--nav-text); border: 1px solid #374151; }
main { max-width: 1200px; margin: 0 auto; padding: 20px; }
h1 { font-size: 22px; margin: 4px 0 16px; }
h1.mono { font-size: 18px; word-break: break-all; }
.nowrap { white-space: nowrap; }
table.providers th:first-child { width: 30%; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px;
  margin-bottom: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .value { font-size: 26px; font-weight: 650; margin-top: 2px; }
.card .hint { color: var(--muted); font-size: 12px; }
.card.warn .value { color: #d97706; }
.card.bad .value { color: var(--danger); }
.card .value a { color: inherit; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: 600; }
tbody tr:hover { background: var(--bg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  white-space: nowrap; background: #e5e7eb; color: #374151; }
.badge.s-created, .badge.s-queued { background: #e0e7ff; color: #3730a3; }
.badge.s-sent { background: #dbeafe; color: #1d4ed8; }
.badge.s-delivered { background: #ccfbf1; color: #0f766e; }
.badge.s-opened, .badge.s-clicked { background: #dcfce7; color: #15803d; }
.badge.s-deferred, .badge.s-rate_limited, .badge.s-scheduled, .badge.s-digested { background: #fef3c7; color: #92400e; }
.badge.s-failed, .badge.s-bounced, .badge.s-complained { background: #fee2e2; color: #b91c1c; }
.badge.s-suppressed, .badge.s-unsubscribed, .badge.s-duplicate, .badge.s-skipped, .badge.s-canceled { background: #f3f4f6; color: #4b5563; }
.badge.on { background: #dcfce7; color: #15803d; }
.badge.off { background: #fee2e2; color: #b91c1c; }
.badge.neutral { background: #f3f4f6; color: #4b5563; }
.channel { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
${CHANNELS.map((c) => `.ch-${c} { background: ${CHANNEL_COLOURS[c]}; } rect.ch-${c} { fill: ${CHANNEL_COLOURS[c]}; }`).join('\n')}
form.inline { display: inline; margin: 0; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
input, select, button { font: inherit; padding: 6px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--panel); color: var(--text); }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); font-weight: 600; }
button.secondary { background: var(--panel); color: var(--text); border-color: var(--line); }
button.danger { background: var(--danger); border-color: var(--danger); }
button.small { padding: 2px 10px; font-size: 13px; }
.flash { padding: 10px 14px; border-radius: 8px; margin-bottom: 16px; background: #dcfce7; color: #14532d;
  border: 1px solid #86efac; }
.flash.error { background: #fee2e2; color: #7f1d1d; border-color: #fca5a5; }
.tabs { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 12px; }
.tabs a { padding: 3px 10px; border: 1px solid var(--line); border-radius: 999px; background: var(--panel); }
.tabs a.active { background: var(--accent); color: #fff; border-color: var(--accent); }
.legend { display: flex; gap: 14px; flex-wrap: wrap; font-size: 13px; color: var(--muted); margin-top: 6px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { fill: var(--muted); font-size: 15px; }
svg.chart line.grid { stroke: var(--line); }
svg.chart rect.stage { fill: var(--accent); opacity: .85; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; }
.delivery { border-top: 1px solid var(--line); padding-top: 12px; margin-top: 12px; }
.delivery:first-of-type { border-top: 0; margin-top: 0; padding-top: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0 0 10px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
.login { max-width: 380px; margin: 12vh auto; }
.login form { display: flex; flex-direction: column; gap: 12px; }
.pager { display: flex; justify-content: flex-end; margin-top: 10px; }
@media (max-width: 640px) {
  main { padding: 12px; }
  th, td { padding: 6px; }
  .card .value { font-size: 22px; }
}
`;
