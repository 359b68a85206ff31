// Turns the backend's chart spec plus a result set into the props our chart components need.
import type { Cell, ChartSpec, ChartType } from "./api";

export interface ChartPlan {
  type: ChartType;
  /** Column used for the category / x axis. */
  x: string | null;
  /** Numeric columns drawn as values. */
  ys: string[];
  /** Rows as objects keyed by column name (numbers kept as numbers). */
  data: Record<string, Cell>[];
  /** Why the requested chart was downgraded, if it was. */
  note: string | null;
}

/** Beyond this many rows a pie is unreadable even with "Other": bars instead. */
const MAX_PIE_SLICES = 16;
/** Slices drawn before the rest is summed as "Other". */
const PIE_SLICES = 8;

/** The share of each slice, for labels: key of the percentage in a pie row. */
export const PCT = "__pct";

/**
 * Pie rows by size, the smallest beyond `slices - 1` summed into "Other", each with its share of
 * the total (0..1) under PCT.
 */
export function pieSlices(data: Record<string, Cell>[], x: string, y: string, slices = PIE_SLICES): Record<string, Cell>[] {
  const rows = data
    .map((r) => ({ ...r, [y]: typeof r[y] === "number" ? (r[y] as number) : 0 }))
    .sort((a, b) => (b[y] as number) - (a[y] as number));
  let kept = rows;
  if (rows.length > slices) {
    kept = rows.slice(0, slices - 1);
    const rest = rows.slice(slices - 1).reduce((s, r) => s + (r[y] as number), 0);
    kept.push({ [x]: "Other", [y]: rest });
  }
  const total = kept.reduce((s, r) => s + (r[y] as number), 0);
  return kept.map((r) => ({ ...r, [PCT]: total > 0 ? (r[y] as number) / total : 0 }));
}
const MAX_POINTS = 500;

function isNumericColumn(rows: Cell[][], idx: number): boolean {
  let seen = 0;
  for (const r of rows) {
    const v = r[idx];
    if (v === null || v === undefined) continue;
    if (typeof v !== "number") return false;
    seen++;
  }
  return seen > 0;
}

/**
 * Picks the chart to draw. The backend's spec wins when its columns exist and are usable; otherwise
 * the plan falls back to a table (or a KPI for a single number) and says why.
 */
export function planChart(spec: ChartSpec | null | undefined, columns: string[], rows: Cell[][]): ChartPlan {
  const data = rows.slice(0, MAX_POINTS).map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? null])));
  const numeric = columns.filter((_, i) => isNumericColumn(rows, i));
  const table = (note: string | null): ChartPlan => ({ type: "table", x: null, ys: [], data, note });

  if (rows.length === 0 || columns.length === 0) return table(null);

  // A single value: show it as a KPI whatever was asked.
  if (rows.length === 1 && columns.length === 1) {
    return { type: "kpi", x: null, ys: [columns[0]], data, note: null };
  }

  const type: ChartType = spec?.type ?? "table";
  if (type === "table") return table(null);
  if (type === "kpi") {
    const y = spec?.y && columns.includes(spec.y) ? spec.y : numeric[0] ?? columns[0];
    return { type: "kpi", x: null, ys: [y], data: data.slice(0, 1), note: null };
  }

  const x = spec?.x && columns.includes(spec.x) ? spec.x : columns.find((c) => !numeric.includes(c)) ?? columns[0];
  let ys: string[];
  if (spec?.y && columns.includes(spec.y) && numeric.includes(spec.y)) {
    ys = [spec.y];
  } else {
    ys = numeric.filter((c) => c !== x);
  }
  if (type !== "pie" && type !== "scatter" && spec?.series && columns.includes(spec.series)) {
    // Long format (x, series, y) -> one column per series value.
    const y = ys[0];
    if (y) {
      const byX = new Map<string, Record<string, Cell>>();
      const seriesValues: string[] = [];
      for (const row of data) {
        const key = String(row[x]);
        const s = String(row[spec.series]);
        if (!seriesValues.includes(s)) seriesValues.push(s);
        const obj = byX.get(key) ?? { [x]: row[x] };
        obj[s] = row[y];
        byX.set(key, obj);
      }
      if (seriesValues.length <= 10) {
        return { type, x, ys: seriesValues, data: [...byX.values()], note: null };
      }
    }
  }
  if (ys.length === 0) return table("No numeric column to chart; showing the table.");

  if (type === "pie") {
    if (rows.length > MAX_PIE_SLICES) {
      return { type: "bar", x, ys: ys.slice(0, 1), data, note: `Too many slices for a pie (${rows.length}); shown as bars.` };
    }
    const slices = pieSlices(data, x, ys[0]);
    const note = rows.length > PIE_SLICES ? `The ${rows.length - PIE_SLICES + 1} smallest are shown together as "Other".` : null;
    return { type: "pie", x, ys: ys.slice(0, 1), data: slices, note };
  }
  if (type === "scatter") {
    const xNumeric = numeric.includes(x);
    if (!xNumeric) return { type: "bar", x, ys, data, note: "The x column is not numeric; shown as bars." };
    return { type: "scatter", x, ys: ys.slice(0, 1), data, note: null };
  }
  return { type, x, ys: ys.slice(0, 3), data, note: null };
}

/** Splits rows into pages. */
export function paginate<T>(rows: T[], page: number, pageSize: number): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(rows.length / pageSize));
  const p = Math.min(Math.max(0, page), pages - 1);
  return { items: rows.slice(p * pageSize, (p + 1) * pageSize), page: p, pages };
}
