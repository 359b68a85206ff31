"use client";
import { useEffect, useState } from "react";
import { api, type CacheBuild } from "@/lib/api";
import { formatCompact, formatDate } from "@/lib/format";

const POLL_MS = 1000;

/** What the build is doing, in words: "Preparing your data: 42% (8.4M of 20M rows)". */
export function progressText(b: CacheBuild): string {
  if (b.phase === "reading" && b.rows_total > 0) {
    const pct = Math.floor(b.percent ?? (100 * b.rows_read) / b.rows_total);
    return `Preparing your data: ${pct}% (${formatCompact(b.rows_read)} of ${formatCompact(b.rows_total)} rows)`;
  }
  if (b.phase === "summarising") return "Preparing your data: all rows read, summarising them";
  if (b.phase === "saving") return "Preparing your data: saving it for the next start";
  return "Preparing your data";
}

/**
 * Shown while the backend builds its fast copy of a new file; polls until it is done. Charts
 * appear meanwhile as their answers arrive: the newest days come first, older periods take longer.
 */
export function DataProgress() {
  const [build, setBuild] = useState<CacheBuild | null>(null);
  useEffect(() => {
    let current = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = () =>
      api.status().then(
        (s) => {
          if (!current) return;
          const running = s.cache === "building" && !!s.cache_build;
          setBuild(running ? s.cache_build! : null);
          if (running) timer = setTimeout(poll, POLL_MS);
        },
        () => current && setBuild(null),
      );
    poll();
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, []);
  if (!build) return null;
  const pct = build.phase === "reading" ? build.percent ?? 0 : build.phase === "waiting" ? 0 : 100;
  return (
    <div className="notice info progress" role="status" data-testid="data-progress">
      <strong>{progressText(build)}</strong>
      <progress max={100} value={pct} aria-label="Data prepared" />
      <span>
        {build.covered_from
          ? `Charts from ${formatDate(build.covered_from)} on are ready; earlier periods take longer until this is done.`
          : "The latest days come first; charts appear as their figures arrive."}
      </span>
    </div>
  );
}
