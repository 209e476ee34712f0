// Small SVG charts for the dashboard, drawn here from plain numbers (no chart library): bars
// (stacked series) or lines over labelled x positions, with a y axis of round numbers,
// gridlines, a legend, and every value in a tooltip (<title>). Colours come from CSS classes
// (a series' `cls`, else .chart-s0, .chart-s1, …), so the charts follow light and dark mode.

const NS = "http://www.w3.org/2000/svg";
const W = 560;
const H = 220;
const M = { left: 52, right: 10, top: 10, bottom: 26 };

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** The smallest step of 1, 2 or 5 × 10^k at or above `v` (at least 1 when `whole`). */
export function niceStep(v, whole = false) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= v - 1e-12 * p);
  return whole ? Math.max(1, step) : step;
}

/** 1234 → "1.2k", 5e6 → "5M": short numbers for an axis. */
export function compact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toPrecision(3)}`;
}

/**
 * A chart as a <figure>.
 * @param {object} o
 * @param {"bar"|"line"} o.kind  bars stack their series; lines draw one polyline each
 * @param {string} o.title  the caption (and the image's accessible name)
 * @param {string[]} o.labels  one per x position (days)
 * @param {{label: string, values: number[], cls?: string}[]} o.series
 * @param {(n: number) => string} [o.format]  how a value reads in tooltips
 * @param {(n: number) => string} [o.axis]  how a value reads on the y axis
 * @param {boolean} [o.whole]  counts: the axis steps by whole numbers
 * A line skips the positions whose value is null.
 * @param {string} [o.testid]
 * @param {(label: string) => string} [o.tick]  how an x label reads under the axis (default:
 *   a day's "MM-DD" of "YYYY-MM-DD")
 */
export function chart({ kind, title, labels, series, format = compact, testid = null, axis = compact, whole = false, tick = (label) => label.slice(5) }) {
  const n = labels.length;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const stackTop = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const peak = kind === "bar" ? Math.max(0, ...stackTop) : Math.max(0, ...series.flatMap((s) => s.values.map((v) => v || 0)));
  const step = niceStep(peak / 4, whole);
  const ticks = Math.max(1, Math.ceil(peak / step - 1e-9));
  const top = step * ticks;
  const y = (v) => M.top + plotH - (v / top) * plotH;
  const band = plotW / Math.max(1, n);
  const cx = (i) => M.left + band * (i + 0.5);

  const root = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": title });
  const grid = el("g", { class: "chart-grid" });
  for (let k = 0; k <= ticks; k += 1) {
    const v = step * k;
    grid.append(el("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    grid.append(el("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", class: "chart-tick" }, axis(v)));
  }
  const every = Math.max(1, Math.ceil(n / 8)); // about eight day labels, the last one always
  labels.forEach((label, i) => {
    if ((n - 1 - i) % every === 0) {
      grid.append(el("text", { x: cx(i), y: H - 8, "text-anchor": "middle", class: "chart-tick" }, tick(label)));
    }
  });
  root.append(grid);

  series.forEach((s, si) => {
    const g = el("g", { class: `chart-series ${s.cls || `chart-s${si}`}`, "data-series": s.label });
    if (kind === "bar") {
      const below = labels.map((_, i) => series.slice(0, si).reduce((a, x) => a + (x.values[i] || 0), 0));
      s.values.forEach((v, i) => {
        if (!v) return;
        const rect = el("rect", {
          x: cx(i) - band * 0.35,
          width: band * 0.7,
          y: y(below[i] + v),
          height: Math.max(1, y(below[i]) - y(below[i] + v)),
          "data-value": v,
        });
        rect.append(el("title", {}, `${labels[i]} · ${s.label}: ${format(v)}`));
        g.append(rect);
      });
    } else {
      // a line through the positions that have a value; null (no data) breaks it
      let run = [];
      const flush = () => {
        if (run.length > 1) g.append(el("polyline", { points: run.join(" "), fill: "none" }));
        run = [];
      };
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return flush();
        run.push(`${cx(i)},${y(v)}`);
        const dot = el("circle", { cx: cx(i), cy: y(v), r: 3, "data-value": v });
        dot.append(el("title", {}, `${labels[i]} · ${s.label}: ${format(v)}`));
        g.append(dot);
      });
      flush();
    }
    root.append(g);
  });

  const legend = document.createElement("ul");
  legend.className = "chart-legend";
  series.forEach((s, si) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `chart-swatch ${s.cls || `chart-s${si}`}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, s.label);
    legend.append(item);
  });
  const figure = document.createElement("figure");
  figure.className = `chart chart-${kind}`;
  if (testid) figure.dataset.testid = testid;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, root, legend);
  return figure;
}
