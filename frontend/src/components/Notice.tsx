import type { ErrorView } from "@/lib/api";

export function Notice({ view, kind = "error", children }: { view: ErrorView; kind?: "error" | "info"; children?: React.ReactNode }) {
  return (
    <div className={`notice ${kind}`} role={kind === "error" ? "alert" : "status"} data-testid="notice">
      <strong>{view.title}</strong>
      <span>{view.detail}</span>
      {children}
    </div>
  );
}
