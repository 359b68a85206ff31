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
import { defaultGranularity, partialNote, PRESETS, presetRange, rangeDays } from "@/lib/dates";
import { formatDate } from "@/lib/format";
import { DataProgress } from "./DataProgress";
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
const TOP_N = 10;

export function Dashboard() {
  const [meta, setMeta] = useState<{ profile: Profile; filters: FiltersResponse } | null>(null);
  const [metaError, setMetaError] = useState<ErrorView | null>(null);
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [dimFilters, setDimFilters] = useState<Record<string, string>>({});
  // null until the user picks one: then the range decides (weeks for 90 days, not 90 sparse days)
  const [chosenGranularity, setGranularity] = useState<Granularity | null>(null);
  const [measure, setMeasure] = useState<string>("");
  const [topDim, setTopDim] = useState<string>("");
  const [narrowed, setNarrowed] = useState<Record<string, string[]>>({});

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
  const activeDims = useMemo(() => Object.fromEntries(Object.entries(dimFilters).filter(([, v]) => v)), [dimFilters]);
  const query: DashboardQuery = useMemo(() => ({ start, end, filters: activeDims }), [start, end, activeDims]);
  const qKey = JSON.stringify(query);

  // The range the figures cover: the chosen dates, else the backend's default (the last 90 days).
  const rangeStart = start || (meta?.filters.date_max ? presetRange("90d", meta.filters.date_min!, meta.filters.date_max).start : "");
  const rangeEnd = end || meta?.filters.date_max || "";
  const granularity: Granularity = chosenGranularity ?? (rangeStart && rangeEnd ? defaultGranularity(rangeDays(rangeStart, rangeEnd)) : "week");

  // A filtered dimension would break down into one bar: offer the others.
  const breakdownDims = (meta?.profile.dimensions ?? []).filter((d) => !activeDims[d.name]);
  const breakdown = breakdownDims.some((d) => d.name === topDim) ? topDim : breakdownDims[0]?.name ?? "";

  const kpis = usePanel<KpisResponse>(usable, () => api.kpis(query), [qKey]);
  const series = usePanel<TimeseriesResponse>(usable && !!measure, () => api.timeseries(granularity, measure, query), [qKey, granularity, measure]);
  // One more than shown: "(top 10)" only when the list was cut.
  const top = usePanel<TopResponse>(usable && !!breakdown, () => api.top(breakdown, measure || undefined, TOP_N + 1, query), [qKey, breakdown, measure]);

  // Choices of the other filters narrow to the values that occur with the active ones.
  const filtersKey = JSON.stringify(activeDims);
  useEffect(() => {
    if (!usable || !meta) return;
    const active = Object.keys(activeDims);
    if (active.length === 0) {
      setNarrowed({});
      return;
    }
    let current = true;
    const all = { start: meta.filters.date_min ?? undefined, end: meta.filters.date_max ?? undefined, filters: activeDims };
    const others = meta.profile.dimensions.filter((d) => !activeDims[d.name]);
    Promise.all(others.map((d) => api.top(d.name, "rows", 100, all).then((r) => [d.name, r.items.map((i) => i.label ?? "")] as const))).then(
      (pairs) => current && setNarrowed(Object.fromEntries(pairs)),
      () => current && setNarrowed({}),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [usable, filtersKey]);

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
        <DataProgress />
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
  const dimLabel = profile.dimensions.find((d) => d.name === breakdown)?.label ?? breakdown;
  const activeFilters = Object.values(dimFilters).filter(Boolean).length + (start || end ? 1 : 0);
  const currency = profile.currency ?? null;
  // No comparison when the previous period holds nothing (always so for "All data").
  const compare = !!kpis.data && (kpis.data.kpis.find((k) => k.name === "rows")?.previous ?? 0) > 0;
  const topItems = top.data?.items.slice(0, TOP_N) ?? [];
  // The series covers the range within the data; its end periods may be cut short.
  const shownStart = [rangeStart, filters.date_min ?? ""].sort()[1] ?? rangeStart;
  const shownEnd = [rangeEnd, filters.date_max ?? rangeEnd].sort()[0];
  const partial = series.data ? partialNote(shownStart, shownEnd, series.data.granularity) : null;
  const cut = (top.data?.items.length ?? 0) > TOP_N;

  return (
    <div className="stack">
      <Header
        period={
          kpis.data
            ? `${formatDate(kpis.data.period.start)} – ${formatDate(kpis.data.period.end)}` +
              (compare
                ? `, compared with ${formatDate(kpis.data.previous_period.start)} – ${formatDate(kpis.data.previous_period.end)}`
                : "")
            : undefined
        }
      />

      <DataProgress />

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
              value={start || kpis.data?.period.start || rangeStart}
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
              value={end || kpis.data?.period.end || rangeEnd}
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
                {(narrowed[d.name] ? d.values.filter((v) => narrowed[d.name].includes(v) || v === dimFilters[d.name]) : d.values).map((v) => (
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
              setGranularity(null);
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

      {kpis.error ? <Notice view={kpis.error} /> : <KpiCards kpis={kpis.data?.kpis ?? null} loading={kpis.loading} currency={currency} compare={compare} />}

      <section className="panel">
        <div className="panel-head">
          <h2>{measureLabel} over time</h2>
          <div className="panel-tools">
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
            <>
              <TimeSeriesChart points={series.data.points} format={measureFormat} label={measureLabel} currency={currency} />
              {partial && (
                <p className="muted chart-note" data-testid="partial-note">
                  {partial}
                </p>
              )}
            </>
          ) : (
            <div className="skeleton" style={{ height: 300 }} />
          )}
        </div>
      </section>

      <section className="panel">
        <div className="panel-head">
          <h2>
            {measureLabel} by {dimLabel ? dimLabel.toLowerCase() : "dimension"}{" "}
            {cut && (
              <span className="muted" style={{ fontWeight: 400 }} data-testid="top-cut">
                (top {TOP_N})
              </span>
            )}
          </h2>
          <label className="field inline">
            Breakdown by
            <select data-testid="top-dimension" value={breakdown} onChange={(e) => setTopDim(e.target.value)}>
              {breakdownDims.map((d) => (
                <option key={d.name} value={d.name}>
                  {d.label}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div data-testid="top" data-items={topItems.length}>
          {profile.dimensions.length === 0 ? (
            <div className="empty">The dataset has no text columns to break the data down by.</div>
          ) : top.error ? (
            <Notice view={top.error} />
          ) : top.data && topItems.length === 0 ? (
            <div className="empty">No data for this period and these filters.</div>
          ) : top.data ? (
            <TopBarChart items={topItems} format={measureFormat} label={measureLabel} currency={currency} />
          ) : (
            <div className="skeleton" style={{ height: 320 }} />
          )}
        </div>
      </section>

      {profile.notes.length > 0 && (
        <details className="panel profile-notes" data-testid="profile-notes">
          <summary>How this dashboard reads your data</summary>
          <ul>
            {profile.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        </details>
      )}
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
