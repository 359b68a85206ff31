import type { Cell, Kpi, MeasureFormat } from "./api";

const nf = (opts: Intl.NumberFormatOptions) => new Intl.NumberFormat("en-US", opts);

// Money is shown without a symbol: the dataset does not say which currency its amounts are in.
const currencyFmt = nf({ minimumFractionDigits: 2, maximumFractionDigits: 2 });
const countFmt = nf({ maximumFractionDigits: 0 });
const numberFmt = nf({ maximumFractionDigits: 2 });
const smallFmt = nf({ maximumSignificantDigits: 3 });
const compactFmt = nf({ notation: "compact", maximumFractionDigits: 1 });

/** Formats a KPI or measure value for display: "12,345.60", "20,000", "3.14"; "—" when missing. */
export function formatValue(value: number | null | undefined, format: MeasureFormat = "number"): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  switch (format) {
    case "currency":
      return currencyFmt.format(value);
    case "count":
      return countFmt.format(value);
    default:
      // Ratios such as an average discount of 0.0368 would all read "0.04" with two decimals.
      return value !== 0 && Math.abs(value) < 1 ? smallFmt.format(value) : numberFmt.format(value);
  }
}

/** Short form for chart axes: "1.2M", "12.3K". */
export function formatCompact(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  return compactFmt.format(value);
}

export type Trend = "up" | "down" | "flat" | "none";

export interface ChangeView {
  text: string;
  trend: Trend;
}

/** Period-over-period change: "+12.2%", "−3.0%", "0.0%"; "no previous data" when unknown. */
export function formatChange(changePct: number | null | undefined): ChangeView {
  if (changePct === null || changePct === undefined || Number.isNaN(changePct)) {
    return { text: "no previous data", trend: "none" };
  }
  const rounded = Math.round(changePct * 10) / 10;
  if (rounded === 0) return { text: "0.0%", trend: "flat" };
  const abs = Math.abs(rounded).toFixed(1);
  return rounded > 0 ? { text: `+${abs}%`, trend: "up" } : { text: `\u2212${abs}%`, trend: "down" };
}

export function kpiView(k: Kpi) {
  return {
    label: k.label,
    value: formatValue(k.value, k.format),
    previous: formatValue(k.previous, k.format),
    change: formatChange(k.change_pct),
  };
}

/** Renders one result cell in a table. */
export function formatCell(v: Cell): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : numberFmt.format(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  return v;
}

/** "2024-01-05" -> "Jan 5, 2024" for period labels shown to people. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) return iso;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });
}
