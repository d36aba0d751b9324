/**
 * The console's stylesheet, served as `/assets/console.css` (the Content-Security-Policy allows no inline style).
 *
 * @since 0.4.0
 */

/**
 * @since 0.4.0
 * @category assets
 */
export const css = String.raw`
:root {
  --ink: #1d2330; --muted: #667085; --line: #e3e6ec; --paper: #ffffff; --wash: #f5f6f9;
  --brand: #3b4cca; --brand-ink: #ffffff; --ok: #16794c; --ok-wash: #e6f4ec; --bad: #b42318; --bad-wash: #fdecea;
  --warn: #b54708; --warn-wash: #fef4e6; --top: #151a2b;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
}
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { font: 14px/1.45 var(--sans); color: var(--ink); background: var(--wash); }
a { color: var(--brand); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
h3 { font-size: 12px; margin: 0 0 4px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
code, pre, .mono { font-family: var(--mono); font-size: 12.5px; }

header.top { display: flex; align-items: center; gap: 20px; padding: 10px 20px; background: var(--top); color: #d7dbea;
  flex-wrap: wrap; }
header.top .brand { color: #fff; font-weight: 700; font-size: 16px; letter-spacing: .02em; }
header.top .brand span { color: #8d9bff; font-weight: 400; }
header.top nav { display: flex; gap: 4px; }
header.top nav a { color: #c3c8dc; padding: 5px 10px; border-radius: 6px; }
header.top nav a:hover { background: #252c45; text-decoration: none; }
header.top nav a.current { background: var(--brand); color: var(--brand-ink); }
header.top .status { font-size: 12px; color: #9aa3bf; flex: 1; min-width: 200px; }
header.top .status b { color: #e3e6f3; font-weight: 600; }
header.top .status .problem { color: #ffb4a8; }
header.top .token { display: flex; align-items: center; gap: 8px; font-size: 12px; }
header.top .token input { width: 150px; background: #222842; color: #fff; border: 1px solid #394066; }

main { padding: 18px 20px 40px; max-width: 1400px; }
.flash-area { padding: 0 20px; }
.flash { margin: 12px 0 0; padding: 8px 12px; border-radius: 6px; border: 1px solid; max-width: 1360px; }
.flash.ok { background: var(--ok-wash); border-color: #a6d8bd; color: var(--ok); }
.flash.error { background: var(--bad-wash); border-color: #f1b5ae; color: var(--bad); }

input, select, button { font: inherit; }
input, select { padding: 5px 8px; border: 1px solid #c9ced9; border-radius: 6px; background: #fff; color: var(--ink); }
button { padding: 5px 12px; border-radius: 6px; border: 1px solid var(--brand); background: var(--brand);
  color: var(--brand-ink); cursor: pointer; }
button.secondary { background: #fff; color: var(--brand); }
button.danger { background: #fff; color: var(--bad); border-color: #e8a39b; }
button.danger.armed { background: var(--bad); color: #fff; }
button:disabled { opacity: .5; cursor: default; }

form.search { display: flex; gap: 10px; align-items: flex-end; flex-wrap: wrap; margin-bottom: 16px; padding: 12px;
  background: var(--paper); border: 1px solid var(--line); border-radius: 8px; }
form.search label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }

.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  margin-bottom: 14px; }
table { border-collapse: collapse; width: 100%; background: var(--paper); border: 1px solid var(--line);
  border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
td.error-text { color: var(--bad); max-width: 420px; word-break: break-word; }
.empty { color: var(--muted); padding: 14px; background: var(--paper); border: 1px dashed var(--line);
  border-radius: 8px; }

.facts { display: flex; gap: 22px; flex-wrap: wrap; }
.facts div { display: flex; flex-direction: column; }
.facts dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.facts dd { margin: 0; font-weight: 600; }

.pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; background: #eef0f5;
  color: var(--muted); }
.pill.live, .pill.active, .pill.running { background: var(--ok-wash); color: var(--ok); }
.pill.failed, .pill.deleted, .pill.problem { background: var(--bad-wash); color: var(--bad); }
.pill.archived, .pill.soft-deleted, .pill.reconnecting, .pill.idle { background: var(--warn-wash); color: var(--warn); }

article.event { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 10px; }
article.event > header { display: flex; gap: 12px; align-items: baseline; padding: 8px 12px;
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
article.event .version { font-weight: 700; color: var(--brand); }
article.event .type { font-weight: 600; }
article.event .meta { color: var(--muted); font-size: 12px; }
article.event .body { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px;
  padding: 10px 12px; }
pre { margin: 0; padding: 8px 10px; background: #f7f8fb; border: 1px solid #eceef3; border-radius: 6px;
  max-height: 320px; overflow: auto; white-space: pre-wrap; word-break: break-word; }

.feed-row { display: grid; grid-template-columns: 150px 130px minmax(160px, 1.2fr) minmax(120px, 1fr) minmax(0, 2fr);
  gap: 10px; padding: 7px 10px; background: var(--paper); border-bottom: 1px solid var(--line); align-items: baseline; }
.feed-row:first-child { border-top-left-radius: 8px; border-top-right-radius: 8px; }
.feed-row.fresh { animation: fresh 2.5s ease-out; }
.feed-row .preview { color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.feed { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
@keyframes fresh { from { background: #fff7d6; } to { background: var(--paper); } }

svg.chart { display: block; }
svg.chart .area { fill: #dfe3ff; }
svg.chart .line { fill: none; stroke: var(--brand); stroke-width: 1.5; }
svg.chart .base { stroke: #d0d5e2; stroke-width: 1; }
.toolbar { display: flex; gap: 10px; align-items: center; margin: 0 0 12px; flex-wrap: wrap; }
.muted { color: var(--muted); }
.pager { display: flex; gap: 10px; margin-top: 12px; }
`
