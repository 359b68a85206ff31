"use client";
import { useState } from "react";
import type { Cell } from "@/lib/api";
import { paginate } from "@/lib/chart";
import { formatCell, humanize, isRatioColumn } from "@/lib/format";

export function RowsTable({
  columns,
  rows,
  rowCount,
  truncated,
  pageSize = 10,
}: {
  columns: string[];
  rows: Cell[][];
  rowCount: number;
  truncated: boolean;
  pageSize?: number;
}) {
  const [page, setPage] = useState(0);
  const p = paginate(rows, page, pageSize);
  const numeric = columns.map((_, i) => rows.some((r) => typeof r[i] === "number"));
  const ratio = columns.map((c, i) => isRatioColumn(c, rows.map((r) => r[i])));
  if (rows.length === 0) return <div className="muted">The query returned no rows.</div>;
  return (
    <div data-testid="rows">
      <div className="table-wrap">
        <table className="rows">
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th key={c} className={numeric[i] ? "num" : undefined} title={c}>
                  {humanize(c)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {p.items.map((r, i) => (
              <tr key={p.page * pageSize + i}>
                {r.map((v, j) => (
                  <td key={j} className={numeric[j] ? "num" : undefined}>
                    {formatCell(v, columns[j], ratio[j])}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="pager">
        <span data-testid="rows-summary">
          Rows {p.page * pageSize + 1}–{p.page * pageSize + p.items.length} of {rows.length}
        </span>
        {p.pages > 1 && (
          <>
            <button className="btn small" disabled={p.page === 0} onClick={() => setPage(p.page - 1)}>
              Previous
            </button>
            <span>
              Page {p.page + 1} of {p.pages}
            </span>
            <button className="btn small" disabled={p.page >= p.pages - 1} onClick={() => setPage(p.page + 1)}>
              Next
            </button>
          </>
        )}
      </div>
      {truncated && (
        <div className="cap-note" data-testid="truncated-note">
          {rowCount > rows.length
            ? `The first ${rows.length.toLocaleString("en-US")} of ${rowCount.toLocaleString("en-US")} rows are shown`
            : `Only the first ${rows.length.toLocaleString("en-US")} rows are shown`}
          : the result was capped. Narrow the question to see the rest.
        </div>
      )}
    </div>
  );
}
