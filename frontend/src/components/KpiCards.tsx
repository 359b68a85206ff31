import type { Kpi } from "@/lib/api";
import { kpiView } from "@/lib/format";

export function KpiCards({
  kpis,
  loading,
  currency,
  compare = true,
}: {
  kpis: Kpi[] | null;
  loading?: boolean;
  currency?: string | null;
  /** false when the previous period holds no data (e.g. "All data"): no comparison is shown. */
  compare?: boolean;
}) {
  if (!kpis) {
    return (
      <div className="kpis">
        {[0, 1, 2].map((i) => (
          <div key={i} className="panel kpi">
            <div className="skeleton" style={{ height: 70 }} />
          </div>
        ))}
      </div>
    );
  }
  return (
    <div className="kpis" data-testid="kpis" aria-busy={loading || undefined}>
      {kpis.map((k) => {
        const v = kpiView(k, currency);
        return (
          <div key={k.name} className="panel kpi" data-testid={`kpi-${k.name}`}>
            <div className="label">{v.label}</div>
            <div className={v.value.length > 11 ? "value long" : "value"} data-testid="kpi-value" title={v.value}>
              {v.value}
            </div>
            <div className="prev">
              {compare ? (
                <>
                  <span className={`change ${v.change.trend} ${v.change.tone}`} data-testid="kpi-change" data-tone={v.change.tone}>
                    {v.change.trend === "up" ? "▲ " : v.change.trend === "down" ? "▼ " : ""}
                    {v.change.text}
                  </span>
                  {v.change.trend !== "none" && <>vs {v.previous}</>}
                </>
              ) : (
                <span className="muted" data-testid="kpi-change">
                  nothing earlier to compare
                </span>
              )}
            </div>
          </div>
        );
      })}
    </div>
  );
}
