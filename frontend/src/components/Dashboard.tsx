"use client";
import { useEffect, useMemo, useState } from "react";
import {
  api,
  describeError,
  type DashboardQuery,
  type ErrorView,
  type FiltersResponse,
  type Granularity,
  type KpisResponse,
  type Profile,
  type TimeseriesResponse,
  type TopResponse,
} from "@/lib/api";
import { PRESETS, presetRange } from "@/lib/dates";
import { formatDate } from "@/lib/format";
import { KpiCards } from "./KpiCards";
import { Notice } from "./Notice";
import { TimeSeriesChart, TopBarChart } from "./charts";

type Panel<T> = { data: T | null; error: ErrorView | null; loading: boolean };
const idle = <T,>(): Panel<T> => ({ data: null, error: null, loading: true });

/** Loads `load()` whenever `deps` change, dropping answers that arrive after newer requests. */
function usePanel<T>(enabled: boolean, load: () => Promise<T>, deps: unknown[]): Panel<T> {
  const [state, setState] = useState<Panel<T>>(idle);
  useEffect(() => {
    if (!enabled) return;
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => current && setState({ data, error: null, loading: false }),
      (e) => current && setState({ data: null, error: describeError(e), loading: false }),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [enabled, ...deps]);
  return state;
}

const GRANULARITIES: Granularity[] = ["day", "week", "month"];

export function Dashboard() {
  const [meta, setMeta] = useState<{ profile: Profile; filters: FiltersResponse } | null>(null);
  const [metaError, setMetaError] = useState<ErrorView | null>(null);
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [dimFilters, setDimFilters] = useState<Record<string, string>>({});
  const [granularity, setGranularity] = useState<Granularity>("day");
  const [measure, setMeasure] = useState<string>("");
  const [topDim, setTopDim] = useState<string>("");

  useEffect(() => {
    Promise.all([api.profile(), api.filters()]).then(
      ([profile, filters]) => {
        setMeta({ profile, filters });
        // Money first when there is some: "Amount over time" says more than "Orders over time".
        setMeasure((profile.measures.find((m) => m.format === "currency") ?? profile.measures[0])?.name ?? "");
        setTopDim(profile.dimensions[0]?.name ?? "");
      },
      (e) => setMetaError(describeError(e)),
    );
  }, []);

  const usable = !!meta && !!meta.profile.fact_table && !!meta.profile.date_column;
  const query: DashboardQuery = useMemo(() => ({ start, end, filters: dimFilters }), [start, end, dimFilters]);
  const qKey = JSON.stringify(query);

  const kpis = usePanel<KpisResponse>(usable, () => api.kpis(query), [qKey]);
  const series = usePanel<TimeseriesResponse>(usable && !!measure, () => api.timeseries(granularity, measure, query), [qKey, granularity, measure]);
  const top = usePanel<TopResponse>(usable && !!topDim, () => api.top(topDim, measure || undefined, 10, query), [qKey, topDim, measure]);

  if (metaError) {
    return (
      <div className="stack">
        <Header />
        <Notice view={metaError} />
      </div>
    );
  }
  if (!meta) {
    return (
      <div className="stack">
        <Header />
        <KpiCards kpis={null} />
      </div>
    );
  }
  if (!usable) {
    return (
      <div className="stack">
        <Header />
        <Notice
          kind="info"
          view={{
            title: "This dataset cannot be charted yet",
            detail: meta.profile.notes.join(" ") || "No table with a date column and a numeric measure was found.",
          }}
        />
      </div>
    );
  }

  const { profile, filters } = meta;
  const m = profile.measures.find((x) => x.name === measure) ?? profile.measures[0];
  const measureFormat = m?.format ?? "number";
  const measureLabel = m?.label ?? "Rows";
  const dimLabel = profile.dimensions.find((d) => d.name === topDim)?.label ?? topDim;
  const activeFilters = Object.values(dimFilters).filter(Boolean).length + (start || end ? 1 : 0);

  return (
    <div className="stack">
      <Header
        period={
          kpis.data
            ? `${formatDate(kpis.data.period.start)} – ${formatDate(kpis.data.period.end)}, compared with ${formatDate(
                kpis.data.previous_period.start,
              )} – ${formatDate(kpis.data.previous_period.end)}`
            : undefined
        }
      />

      <section className="panel" aria-label="Filters">
        {filters.date_min && filters.date_max && (
          <div className="seg" role="group" aria-label="Date range" style={{ marginBottom: 12 }}>
            {PRESETS.map((p) => {
              const r = presetRange(p.id, filters.date_min!, filters.date_max!);
              const active = (start === r.start && end === r.end) || (p.id === "90d" && !start && !end);
              return (
                <button
                  key={p.id}
                  aria-pressed={active}
                  data-testid={`range-${p.id}`}
                  onClick={() => {
                    setStart(r.start);
                    setEnd(r.end);
                  }}
                >
                  {p.label}
                </button>
              );
            })}
          </div>
        )}
        <div className="filters">
          <label className="field">
            From
            <input
              type="date"
              data-testid="filter-start"
              value={start}
              min={filters.date_min ?? undefined}
              max={filters.date_max ?? undefined}
              onChange={(e) => setStart(e.target.value)}
            />
          </label>
          <label className="field">
            To
            <input
              type="date"
              data-testid="filter-end"
              value={end}
              min={filters.date_min ?? undefined}
              max={filters.date_max ?? undefined}
              onChange={(e) => setEnd(e.target.value)}
            />
          </label>
          {filters.dimensions.map((d) => (
            <label className="field" key={d.name}>
              {d.label}
              <select
                data-testid={`filter-${d.name}`}
                value={dimFilters[d.name] ?? ""}
                onChange={(e) => setDimFilters((f) => ({ ...f, [d.name]: e.target.value }))}
              >
                <option value="">All</option>
                {d.values.map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
            </label>
          ))}
          <button
            className="btn"
            disabled={activeFilters === 0}
            onClick={() => {
              setStart("");
              setEnd("");
              setDimFilters({});
            }}
          >
            Reset filters
          </button>
        </div>
        {filters.date_min && (
          <p className="sub" style={{ marginTop: 10 }}>
            Data from {formatDate(filters.date_min)} to {formatDate(filters.date_max)}. Without dates, the last 90 days are shown.
          </p>
        )}
      </section>

      {kpis.error ? <Notice view={kpis.error} /> : <KpiCards kpis={kpis.data?.kpis ?? null} loading={kpis.loading} />}

      <section className="panel">
        <div className="panel-head">
          <h2>{measureLabel} over time</h2>
          <div style={{ display: "flex", gap: 12, alignItems: "center" }}>
            {profile.measures.length > 1 && (
              <select className="btn" aria-label="Measure" value={measure} onChange={(e) => setMeasure(e.target.value)}>
                {profile.measures.map((x) => (
                  <option key={x.name} value={x.name}>
                    {x.label}
                  </option>
                ))}
              </select>
            )}
            <div className="seg" role="group" aria-label="Granularity">
              {GRANULARITIES.map((g) => (
                <button key={g} aria-pressed={granularity === g} data-testid={`granularity-${g}`} onClick={() => setGranularity(g)}>
                  {g[0].toUpperCase() + g.slice(1)}
                </button>
              ))}
            </div>
          </div>
        </div>
        <div
          data-testid="timeseries"
          data-granularity={series.data?.granularity ?? ""}
          data-points={series.data?.points.length ?? 0}
          data-first-period={series.data?.points[0]?.period ?? ""}
          aria-busy={series.loading}
        >
          {series.error ? (
            <Notice view={series.error} />
          ) : series.data && series.data.points.length === 0 ? (
            <div className="empty">No data for this period and these filters.</div>
          ) : series.data ? (
            <TimeSeriesChart points={series.data.points} format={measureFormat} label={measureLabel} />
          ) : (
            <div className="skeleton" style={{ height: 300 }} />
          )}
        </div>
      </section>

      <section className="panel">
        <div className="panel-head">
          <h2>
            {measureLabel} by {dimLabel ? dimLabel.toLowerCase() : "dimension"} <span className="muted" style={{ fontWeight: 400 }}>(top 10)</span>
          </h2>
          <label className="field" style={{ flexDirection: "row", alignItems: "center", gap: 8 }}>
            Breakdown by
            <select data-testid="top-dimension" value={topDim} onChange={(e) => setTopDim(e.target.value)}>
              {profile.dimensions.map((d) => (
                <option key={d.name} value={d.name}>
                  {d.label}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div data-testid="top" data-items={top.data?.items.length ?? 0}>
          {profile.dimensions.length === 0 ? (
            <div className="empty">The dataset has no text columns to break the data down by.</div>
          ) : top.error ? (
            <Notice view={top.error} />
          ) : top.data && top.data.items.length === 0 ? (
            <div className="empty">No data for this period and these filters.</div>
          ) : top.data ? (
            <TopBarChart items={top.data.items} format={measureFormat} label={measureLabel} />
          ) : (
            <div className="skeleton" style={{ height: 320 }} />
          )}
        </div>
      </section>
    </div>
  );
}

function Header({ period }: { period?: string }) {
  return (
    <div className="page-head">
      <div>
        <h1>Dashboard</h1>
        <p className="sub" data-testid="period">
          {period ?? "Key figures over your data"}
        </p>
      </div>
    </div>
  );
}
