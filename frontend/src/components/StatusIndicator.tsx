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
  return (
    <div className="status" data-testid="status">
      <span className="status-item" title={health?.llm?.model ? `Model: ${health.llm.model}` : undefined}>
        <span className={`dot ${s.data.ok ? "ok" : "bad"}`} />
        {s.data.text}
      </span>
      <span className="status-item" title={health?.llm?.model ? `Model: ${health.llm.model}` : undefined}>
        <span className={`dot ${s.model.ok ? "ok" : "bad"}`} />
        {s.model.text}
      </span>
    </div>
  );
}
