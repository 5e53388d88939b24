/**
 * The page frame shared by the run report (html.ts) and the nightly dashboard (dashboard.ts):
 * escaping, tables, the style sheet, and plots drawn by plotly from JSON specs embedded in the page
 * (no network: the bundle is a file next to the page, see write.ts).
 */

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON inside <script>: `<` escaped so no string in the data can close the script element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export type PlotTrace = Record<string, unknown>;

/** One plot: a div with this id, `data-traces` = traces.length, drawn by plotly from this spec. */
export interface PlotSpec {
  id: string;
  traces: PlotTrace[];
  layout: Record<string, unknown>;
  /** Shown under the plot: how to read it. */
  caption?: string;
}

export function plotDiv(spec: PlotSpec): string {
  const caption = spec.caption ? `<p class="caption">${escapeHtml(spec.caption)}</p>` : '';
  return `<figure><div class="plot" id="${escapeHtml(spec.id)}" data-traces="${spec.traces.length}"></div>${caption}</figure>`;
}

/** Already-escaped cell HTML, or that plus attributes for the <td> (a class, a title). */
export type Cell = string | { html: string; attrs: string };

/** A table from rows of cells; `rowAttrs` may add a class or data attributes per row. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly Cell[]>, rowAttrs: readonly string[] = []): string {
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const td = (c: Cell) => (typeof c === 'string' ? `<td>${c}</td>` : `<td ${c.attrs}>${c.html}</td>`);
  const body = rows.map((cells, i) => `<tr${rowAttrs[i] ? ` ${rowAttrs[i]}` : ''}>${cells.map(td).join('')}</tr>`).join('\n');
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 0 20px 40px; }
.banner { padding: 18px 24px; color: #fff; font-size: 22px; font-weight: 600; }
.banner.pass { background: #1a7f37; }
.banner.fail { background: #cf222e; }
.banner small { display: block; font-size: 14px; font-weight: 400; opacity: .9; }
h2 { margin-top: 32px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.fail td { background: #ffebe9; }
tr.error td { background: #fff8c5; }
tr.first-divergence td { outline: 2px solid #cf222e; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 700; }
.skip { color: #59636e; font-style: italic; }
tr.skipped td { background: #f6f8fa; }
.caption, .note { color: #59636e; font-size: 12px; margin: 2px 0 12px; }
figure { margin: 12px 0; }
.plot { width: 100%; min-height: 340px; }
code, .tokens { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.tokens span { padding: 0 2px; }
.tokens span.mismatch { background: #ffcecb; color: #82071e; font-weight: 700; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 12px 0; }
.facts div { min-width: 140px; }
.facts b { display: block; font-size: 18px; }
#plotly-missing { display: none; background: #fff8c5; padding: 8px 12px; border: 1px solid #d4a72c; }
`;

/**
 * Draws every plot once plotly has loaded and marks the body `data-plots="rendered"` (or "error"),
 * so a browser test can wait for the page instead of sleeping.
 */
const PLOT_SCRIPT = `
(function () {
  var specs = JSON.parse(document.getElementById('plot-specs').textContent);
  if (typeof window.Plotly === 'undefined') {
    document.getElementById('plotly-missing').style.display = 'block';
    document.body.setAttribute('data-plots', 'error');
    console.error('plotly.js did not load; expected it at the <script src> of this page');
    return;
  }
  var config = { displaylogo: false, responsive: true };
  Promise.all(specs.map(function (s) { return window.Plotly.newPlot(s.id, s.traces, s.layout, config); }))
    .then(function () { document.body.setAttribute('data-plots', 'rendered'); })
    .catch(function (e) { document.body.setAttribute('data-plots', 'error'); console.error(e); });
})();
`;

export interface PageParts {
  title: string;
  /** Relative URL of the plotly bundle, from the page's folder. */
  plotlySrc: string;
  /** The banner and everything below it, already escaped. */
  body: string;
  plots: readonly PlotSpec[];
  /** CSS added after the shared style sheet. */
  extraStyle?: string;
}

/** The page frame shared by run reports and the dashboard. */
export function renderPage(parts: PageParts): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(parts.title)}</title>
<style>${STYLE}${parts.extraStyle ?? ''}</style>
<script src="${escapeHtml(parts.plotlySrc)}"></script>
</head>
<body>
${parts.body}
<p id="plotly-missing">The plots need <code>${escapeHtml(parts.plotlySrc)}</code> next to this page; it was not found.</p>
<script type="application/json" id="plot-specs">${jsonForScript(parts.plots.map((p) => ({ id: p.id, traces: p.traces, layout: p.layout })))}</script>
<script>${PLOT_SCRIPT}</script>
</body>
</html>
`;
}
