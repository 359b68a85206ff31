// Date range presets for the dashboard, counted back from the dataset's last date (not today:
// a trial's data usually ends in the past).

export type Preset = "30d" | "90d" | "12m" | "all";

export const PRESETS: { id: Preset; label: string }[] = [
  { id: "30d", label: "Last 30 days" },
  { id: "90d", label: "Last 90 days" },
  { id: "12m", label: "Last 12 months" },
  { id: "all", label: "All data" },
];

function parse(iso: string): Date {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d));
}

function iso(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** Inclusive [start, end] for a preset, clamped to the data's first date. */
export function presetRange(preset: Preset, dateMin: string, dateMax: string): { start: string; end: string } {
  if (preset === "all") return { start: dateMin, end: dateMax };
  const end = parse(dateMax);
  const start = new Date(end);
  if (preset === "12m") {
    start.setUTCFullYear(start.getUTCFullYear() - 1);
    start.setUTCDate(start.getUTCDate() + 1);
  } else {
    start.setUTCDate(start.getUTCDate() - ((preset === "30d" ? 30 : 90) - 1));
  }
  const s = iso(start) < dateMin ? dateMin : iso(start);
  return { start: s, end: dateMax };
}

/** Days in an inclusive ISO range. */
export function rangeDays(start: string, end: string): number {
  return Math.round((parse(end).getTime() - parse(start).getTime()) / 86400000) + 1;
}

/**
 * The time series' granularity for a range when the user has not picked one: days up to a month,
 * weeks up to a year (90 days of sparse data read better as 13 weeks than as 90 mostly empty days),
 * months beyond.
 */
export function defaultGranularity(days: number): "day" | "week" | "month" {
  if (days <= 31) return "day";
  if (days <= 366) return "week";
  return "month";
}

/** Whether the range cuts its first or last week/month short (its total is then lower by design). */
export function partialEnds(start: string, end: string, granularity: "day" | "week" | "month"): { first: boolean; last: boolean } {
  if (granularity === "day" || !start || !end) return { first: false, last: false };
  const s = parse(start);
  const e = parse(end);
  if (granularity === "week") {
    return { first: s.getUTCDay() !== 1, last: e.getUTCDay() !== 0 }; // ISO weeks run Monday to Sunday
  }
  const next = new Date(e);
  next.setUTCDate(e.getUTCDate() + 1);
  return { first: s.getUTCDate() !== 1, last: next.getUTCDate() !== 1 };
}

/** "The first and last weeks are partial: ..." or null when both are whole. */
export function partialNote(start: string, end: string, granularity: "day" | "week" | "month"): string | null {
  const { first, last } = partialEnds(start, end, granularity);
  if (!first && !last) return null;
  const unit = granularity;
  if (first && last) return `The first and last ${unit}s are only partly in the range, so their totals are lower.`;
  return `The ${first ? "first" : "last"} ${unit} is only partly in the range, so its total is lower.`;
}
