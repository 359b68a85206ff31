// Typed client for the backend HTTP API (see backend/API.md).
// In production the browser talks to the same origin: Caddy routes /api/* and /health to the
// backend. For local work and the end-to-end test, src/middleware.ts forwards them to BACKEND_URL.

export type MeasureFormat = "currency" | "number" | "count" | "percent";

/** Which way of a change is good news: up (sales), down (costs, discounts) or neither. */
export type Direction = "up" | "down" | "neutral";

export interface HealthResponse {
  status: "ok" | "degraded";
  db: { ok: boolean; tables?: number; error?: string | null };
  llm: { ok: boolean; model?: string; model_present?: boolean; error?: string | null };
}

export interface Measure {
  name: string;
  label: string;
  sql?: string;
  format: MeasureFormat;
  direction?: Direction;
}

export interface Dimension {
  name: string;
  label: string;
  column?: string;
}

export interface Profile {
  fact_table: string | null;
  date_column: string | null;
  source?: "detected" | "override";
  date_table?: string | null;
  /** ISO code of the money measures' currency, when the data or the operator says which. */
  currency?: string | null;
  measures: Measure[];
  dimensions: Dimension[];
  notes: string[];
}

export interface FiltersResponse {
  date_min: string | null;
  date_max: string | null;
  dimensions: { name: string; label: string; values: string[] }[];
}

export interface Period {
  start: string;
  end: string;
}

export interface Kpi {
  name: string;
  label: string;
  value: number | null;
  previous: number | null;
  change_pct: number | null;
  format: MeasureFormat;
  direction?: Direction;
}

export interface KpisResponse {
  period: Period;
  previous_period: Period;
  kpis: Kpi[];
}

/** The column store build, from /api/dashboard/test. */
export interface CacheBuild {
  phase: "waiting" | "reading" | "summarising" | "saving" | "ready" | "loaded" | "off" | "failed";
  rows_read: number;
  rows_total: number;
  percent: number | null;
  /** ISO day: charts from here on are answered from memory already. */
  covered_from: string | null;
  newest_from: string | null;
}

export interface DashboardStatus {
  cache: "ready" | "building" | "off";
  cache_build?: CacheBuild;
}

export type Granularity = "day" | "week" | "month";

export interface TimeseriesResponse {
  granularity: Granularity;
  measure: string;
  points: { period: string; value: number | null }[];
}

export interface TopResponse {
  dimension: string;
  measure: string;
  items: { label: string | null; value: number | null }[];
}

export type ChartType = "bar" | "line" | "pie" | "scatter" | "table" | "kpi";

export interface ChartSpec {
  type: ChartType;
  x?: string | null;
  y?: string | null;
  series?: string | null;
}

export type Cell = string | number | boolean | null;

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

export interface ChatAnswer {
  sql: string | null;
  columns: string[];
  rows: Cell[][];
  row_count: number;
  /** The whole result's size when it was capped (null when counting ran out of time). */
  total_rows?: number | null;
  truncated: boolean;
  chart: ChartSpec | null;
  title: string | null;
  error: string | null;
  /** The database's own message behind a plain `error`. */
  error_detail?: string | null;
}

export interface DashboardQuery {
  start?: string;
  end?: string;
  /** dimension name -> selected value */
  filters?: Record<string, string>;
}

/** An HTTP error from the backend, carrying its plain `detail` message. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  /** Prefix for every path; "" means same origin. */
  baseUrl?: string;
  fetch?: FetchLike;
}

/** Builds `?a=1&filter=x:y` from a dashboard query plus extra params; empty values are skipped. */
export function buildQuery(q: DashboardQuery = {}, extra: Record<string, string | number | undefined> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined && v !== "") p.append(k, String(v));
  }
  if (q.start) p.append("start", q.start);
  if (q.end) p.append("end", q.end);
  for (const [dim, value] of Object.entries(q.filters ?? {})) {
    if (value !== undefined && value !== "") p.append("filter", `${dim}:${value}`);
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

function detailOf(body: unknown): string | null {
  if (body && typeof body === "object" && "detail" in body) {
    const d = (body as { detail: unknown }).detail;
    if (typeof d === "string") return d;
    // FastAPI validation errors: [{loc, msg, ...}]
    if (Array.isArray(d)) {
      return d
        .map((e) => (e && typeof e === "object" && "msg" in e ? String((e as { msg: unknown }).msg) : String(e)))
        .join("; ");
    }
  }
  return null;
}

export function createApiClient(opts: ApiClientOptions = {}) {
  const base = opts.baseUrl ?? "";
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => fetch(input, init));

  async function request<T>(path: string, init?: RequestInit & { allowStatuses?: number[] }): Promise<T> {
    let res: Response;
    try {
      res = await doFetch(base + path, {
        ...init,
        headers: { Accept: "application/json", ...(init?.headers ?? {}) },
        cache: "no-store",
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") throw e;
      if (e instanceof Error && e.name === "AbortError") throw e;
      throw new ApiError(0, "The server could not be reached. Check your connection and try again.");
    }
    const text = await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok && !(init?.allowStatuses ?? []).includes(res.status)) {
      const msg = detailOf(body) ?? `The server answered ${res.status}${res.statusText ? " " + res.statusText : ""}.`;
      throw new ApiError(res.status, msg, body);
    }
    return body as T;
  }

  return {
    /** /health answers 503 with the same shape when degraded; both are returned. */
    health: () => request<HealthResponse>("/health", { allowStatuses: [503] }),
    profile: () => request<Profile>("/api/dashboard/profile"),
    filters: () => request<FiltersResponse>("/api/dashboard/filters"),
    status: () => request<DashboardStatus>("/api/dashboard/test"),
    kpis: (q: DashboardQuery = {}) => request<KpisResponse>(`/api/dashboard/kpis${buildQuery(q)}`),
    timeseries: (granularity: Granularity, measure: string | undefined, q: DashboardQuery = {}) =>
      request<TimeseriesResponse>(`/api/dashboard/timeseries${buildQuery(q, { granularity, measure })}`),
    top: (dimension: string, measure: string | undefined, n = 10, q: DashboardQuery = {}) =>
      request<TopResponse>(`/api/dashboard/top${buildQuery(q, { dimension, measure, n })}`),
    chatExamples: () => request<{ questions: string[] }>("/api/chat/examples"),
    ask: (question: string, history: ChatMessage[] = [], signal?: AbortSignal) =>
      request<ChatAnswer>("/api/chat/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question, history }),
        signal,
      }),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

export const api = createApiClient();

export interface ErrorView {
  title: string;
  detail: string;
}

/** Words for a failed call, for people: what is wrong, then the backend's own detail. */
export function describeError(e: unknown, area: "data" | "chat" = "data"): ErrorView {
  if (e instanceof ApiError) {
    if (e.status === 0) return { title: "Backend unreachable", detail: e.message };
    if (e.status === 503) {
      if (/no data/i.test(e.message)) return { title: "No data loaded yet", detail: e.message };
      return { title: area === "chat" ? "Model unavailable" : "Service unavailable", detail: e.message };
    }
    if (e.status === 409) return { title: "This dataset cannot be charted yet", detail: e.message };
    if (e.status === 422) return { title: "The request was not accepted", detail: e.message };
    if (e.status >= 500) return { title: "The server had a problem", detail: e.message };
    return { title: "Request failed", detail: e.message };
  }
  if (e instanceof Error && e.name === "AbortError") return { title: "Cancelled", detail: "The request was cancelled." };
  return { title: "Something went wrong", detail: e instanceof Error ? e.message : String(e) };
}
