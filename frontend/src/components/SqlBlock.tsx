"use client";
import { useState } from "react";

async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the textarea way (plain http origins have no clipboard API)
  }
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand("copy");
  document.body.removeChild(ta);
  return ok;
}

/** The query behind an answer, folded; with the database's own message when the query failed. */
export function SqlBlock({ sql, open = false, detail }: { sql: string; open?: boolean; detail?: string }) {
  const [copied, setCopied] = useState<"" | "ok" | "failed">("");
  return (
    <details className="sql" open={open} data-testid="sql">
      <summary>SQL</summary>
      <div className="sql-body">
        {detail && (
          <p className="muted sql-detail" data-testid="sql-detail">
            {detail}
          </p>
        )}
        <pre>{sql}</pre>
        <button
          className="btn small"
          onClick={async () => {
            setCopied((await copyText(sql)) ? "ok" : "failed");
            setTimeout(() => setCopied(""), 2000);
          }}
        >
          {copied === "ok" ? "Copied" : copied === "failed" ? "Copy failed" : "Copy"}
        </button>
      </div>
    </details>
  );
}
