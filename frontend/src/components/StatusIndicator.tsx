"use client";
import { useEffect, useState } from "react";
import { api, type HealthResponse } from "@/lib/api";

export function statusLabels(h: HealthResponse | null, failed: boolean) {
  if (failed) return { data: { ok: false, text: "Backend unreachable" }, model: { ok: false, text: "Model unknown" } };
  if (!h) return null;
  return {
    data: h.db?.ok ? { ok: true, text: "Data loaded" } : { ok: false, text: "No data loaded" },
    model:
      h.llm?.ok && h.llm.model_present !== false
        ? { ok: true, text: "Model ready" }
        : { ok: false, text: "Model unavailable" },
  };
}

export function StatusIndicator() {
  const [health, setHealth] = useState<HealthResponse | null>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    let alive = true;
    const load = () =>
      api
        .health()
        .then((h) => alive && (setHealth(h), setFailed(false)))
        .catch(() => alive && setFailed(true));
    load();
    const t = setInterval(load, 30000);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, []);

  const s = statusLabels(health, failed);
  if (!s) return <div className="status" aria-busy="true">Checking status…</div>;
  const model = health?.llm?.model ? ` (${health.llm.model})` : "";
  const summary = `${s.data.text} · ${s.model.text}${model}`;
  // On a phone the texts fold away and the dots stay, with the same words as their tooltip.
  return (
    <div className="status" data-testid="status" title={summary} aria-label={summary}>
      <span className="status-summary" data-testid="status-dot" title={summary}>
        <span className={`dot ${s.data.ok && s.model.ok ? "ok" : "bad"}`} />
      </span>
      <span className="status-item" title={s.data.text}>
        <span className={`dot ${s.data.ok ? "ok" : "bad"}`} />
        <span className="status-text">{s.data.text}</span>
      </span>
      <span className="status-item" title={`${s.model.text}${model}`}>
        <span className={`dot ${s.model.ok ? "ok" : "bad"}`} />
        <span className="status-text">{s.model.text}</span>
      </span>
    </div>
  );
}
