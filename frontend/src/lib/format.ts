// The one number formatter of the app: KPI cards, chart axes and tooltips, answer tables and captions
// all go through here, so "8738825", "0.06" for 0.055 or an axis reading "0, 0, 0, 0, 0.1" cannot
// come back in one place only.
import type { Cell, Direction, Kpi, MeasureFormat } from "./api";

const cache = new Map<string, Intl.NumberFormat>();
function nf(opts: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = JSON.stringify(opts);
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat("en-US", opts);
    cache.set(key, f);
  }
  return f;
}

export interface FormatOptions {
  format?: MeasureFormat;
  /** ISO code: money is shown with its symbol only when the data says which currency it is. */
  currency?: string | null;
}

function plain(value: number): string {
  const abs = Math.abs(value);
  if (abs !== 0 && abs < 1) return nf({ maximumSignificantDigits: 3 }).format(value); // 0.055, not 0.06
  return nf({ maximumFractionDigits: abs < 100 ? 2 : abs < 10000 ? 2 : 0 }).format(value);
}

/**
 * A figure for people: "12,345.60", "€12,345.60" (when the currency is known), "20,000", "5.01%"
 * for a 0..1 ratio, "0.055" for a small value; "—" when missing.
 */
export function formatValue(value: number | null | undefined, format: MeasureFormat = "number", currency?: string | null): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  switch (format) {
    case "currency":
      if (currency) {
        try {
          return nf({ style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
        } catch {
          // an unknown code: fall through to the plain form
        }
      }
      return Math.abs(value) !== 0 && Math.abs(value) < 0.01
        ? nf({ maximumSignificantDigits: 3 }).format(value)
        : nf({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
    case "count":
      return nf({ maximumFractionDigits: 0 }).format(value);
    case "percent":
      return formatPercent(value);
    default:
      return plain(value);
  }
}

/** A 0..1 ratio as a percentage with up to 3 significant digits: 0.0501 -> "5.01%", 0.05 -> "5%". */
export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "—";
  if (ratio === 0) return "0%";
  return nf({ style: "percent", maximumSignificantDigits: 3 }).format(ratio);
}

/** Short form: "1.2M", "12.3K", "0.055". */
export function formatCompact(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (Math.abs(value) < 1000) return plain(value);
  return nf({ notation: "compact", maximumFractionDigits: 1 }).format(value);
}

/** "Nice" axis ticks from 0 (or the minimum when negative) to at least `max`: steps of 1, 2, 2.5 or 5 x 10^k. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (hi === lo) return hi === 0 ? [0, 1] : [lo, hi];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = first; v < hi + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * A tick formatter for axis ticks spaced `step` apart: compact ("250K", "1.5M") with as many
 * decimals as the step needs, so neighbouring ticks never read the same ("0, 0.025, 0.05", not
 * "0, 0, 0, 0, 0.1"). Percent ratios read "2.5%".
 */
export function tickFormatter(ticks: number[], format: MeasureFormat = "number"): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(ticks[0] ?? 1) || 1;
  const decimalsFor = (s: number) => {
    if (!(s > 0)) return 0;
    let d = 0;
    while (d < 10 && Math.abs(Math.round(s * 10 ** d) - s * 10 ** d) > 1e-6 * 10 ** d) d++;
    return d;
  };
  if (format === "percent") {
    const d = decimalsFor(step * 100);
    const f = nf({ style: "percent", minimumFractionDigits: 0, maximumFractionDigits: d });
    return (v) => f.format(v);
  }
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  // Each tick in its own unit ("500", "1K", "1.5K"), with the decimals the step needs in that unit.
  return (v) => {
    if (v === 0) return "0";
    const unit = units.find(([u]) => Math.abs(v) >= u);
    if (!unit) return nf({ maximumFractionDigits: decimalsFor(step) }).format(v);
    const [u, suffix] = unit;
    return `${nf({ maximumFractionDigits: decimalsFor(step / u) }).format(v / u)}${suffix}`;
  };
}

export type Trend = "up" | "down" | "flat" | "none";
/** Whether a change is good news for this measure: colour follows it, neutral when unknown. */
export type Tone = "good" | "bad" | "neutral";

export interface ChangeView {
  text: string;
  trend: Trend;
  tone: Tone;
}

/** Period-over-period change: "+12.2%", "−3.0%", "0.0%"; "no previous data" when unknown. */
export function formatChange(changePct: number | null | undefined, direction: Direction = "neutral"): ChangeView {
  if (changePct === null || changePct === undefined || Number.isNaN(changePct)) {
    return { text: "no previous data", trend: "none", tone: "neutral" };
  }
  const rounded = Math.round(changePct * 10) / 10;
  if (rounded === 0) return { text: "0.0%", trend: "flat", tone: "neutral" };
  const abs = Math.abs(rounded).toFixed(1);
  const trend: Trend = rounded > 0 ? "up" : "down";
  const tone: Tone = direction === "neutral" ? "neutral" : trend === direction ? "good" : "bad";
  return { text: rounded > 0 ? `+${abs}%` : `\u2212${abs}%`, trend, tone };
}

export function kpiView(k: Kpi, currency?: string | null) {
  return {
    label: k.label,
    value: formatValue(k.value, k.format, currency),
    previous: formatValue(k.previous, k.format, currency),
    change: formatChange(k.change_pct, k.direction ?? "neutral"),
  };
}

const RAW_NUMBER_COLUMN = /(^|_|\b)(year|yr|id|code|no|nr|zip|postal|phone)$|Id$|Year$/i;

const RATIO_COLUMN = /(discount|share|pct|percent|ratio|conversion|churn|fraction)/i;

/** Whether a result column holds 0..1 ratios by its name (a discount of 0.055 reads "5.5%"). */
export function isRatioColumn(column: string | undefined, values: Cell[]): boolean {
  if (!column || !RATIO_COLUMN.test(column) || /(^|_|\b)(amount|value|total|sum|count)(_|\b|$)/i.test(column)) return false;
  const nums = values.filter((v): v is number => typeof v === "number");
  return nums.length > 0 && nums.every((v) => v >= 0 && v <= 1);
}

/** One result cell in a table: "8,738,825", "0.055", "Germany"; years and ids stay as written;
 *  `ratio` shows a 0..1 share as a percentage. */
export function formatCell(v: Cell, column?: string, ratio = false): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "number") {
    if (ratio) return formatPercent(v);
    if (column && RAW_NUMBER_COLUMN.test(column)) return String(v);
    return Number.isInteger(v) ? nf({ maximumFractionDigits: 0 }).format(v) : plain(v);
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return v;
}

/** A column name or alias as a caption: "total_face_value" -> "Total face value", "BillingCountry" -> "Billing country". */
export function humanize(name: string | null | undefined): string {
  if (!name) return "";
  const words = name
    .replace(/[_\-.]+/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  if (words.length === 0) return name;
  return words
    .map((w, i) => {
      if (w.length > 1 && w === w.toUpperCase() && /[A-Z]/.test(w)) return w; // SKU, ISO
      const low = w.toLowerCase();
      return i === 0 ? low.charAt(0).toUpperCase() + low.slice(1) : low;
    })
    .join(" ");
}

/** "2024-01-05" -> "Jan 5, 2024" for period labels shown to people. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) return iso;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });
}

/** Ticks, domain and tick formatter for a value axis over these values (charts share it). */
export function valueAxis(values: (number | null | undefined)[], format: MeasureFormat = "number") {
  const nums = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  const ticks = niceTicks(nums.length ? Math.min(...nums) : 0, nums.length ? Math.max(...nums) : 1);
  return {
    ticks,
    domain: [ticks[0], ticks[ticks.length - 1]] as [number, number],
    tickFormatter: tickFormatter(ticks, format),
  };
}

/** A title for people: words written as identifiers are humanised ("total_face_value by country" -> "Total face value by country"). */
export function humanizeTitle(title: string | null | undefined): string {
  if (!title) return "";
  const text = title
    .replace(/\b\w*_\w*\b/g, (w) => humanize(w).toLowerCase())
    .replace(/\b[A-Za-z][a-z]+[A-Z][A-Za-z]*\b/g, (w) => humanize(w).toLowerCase()) // LastName, unitPrice
    .replace(/\s+/g, " ")
    .trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}
