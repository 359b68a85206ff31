import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { KpiCards } from "@/components/KpiCards";
import { RowsTable } from "@/components/RowsTable";
import { statusLabels } from "@/components/StatusIndicator";

describe("KpiCards", () => {
  it("shows formatted values and the change against the previous period", () => {
    const html = renderToStaticMarkup(
      <KpiCards
        kpis={[
          { name: "rows", label: "Orders", value: 20000, previous: 19000, change_pct: 5.26, format: "count" },
          { name: "revenue", label: "Revenue", value: 1500.5, previous: null, change_pct: null, format: "currency" },
        ]}
      />,
    );
    expect(html).toContain("Orders");
    expect(html).toContain("20,000");
    expect(html).toContain("+5.3%");
    expect(html).toContain("vs 19,000");
    expect(html).toContain("1,500.50");
    expect(html).toContain("no previous data");
  });
});

describe("RowsTable", () => {
  it("shows the first page and a note when the result was capped", () => {
    const rows = Array.from({ length: 25 }, (_, i) => [`r${i}`, i]);
    const html = renderToStaticMarkup(<RowsTable columns={["name", "n"]} rows={rows} rowCount={1000} truncated pageSize={10} />);
    expect(html).toContain("r9");
    expect(html).not.toContain("r10<");
    expect(html).toContain("Page 1 of 3");
    expect(html).toContain("Rows 1–10 of 25");
    expect(html).toContain("the result was capped");
  });
});

describe("statusLabels", () => {
  it("reads data and model state from /health", () => {
    expect(statusLabels({ status: "ok", db: { ok: true }, llm: { ok: true, model_present: true } }, false)).toEqual({
      data: { ok: true, text: "Data loaded" },
      model: { ok: true, text: "Model ready" },
    });
    expect(statusLabels({ status: "degraded", db: { ok: false }, llm: { ok: true, model_present: false } }, false)).toEqual({
      data: { ok: false, text: "No data loaded" },
      model: { ok: false, text: "Model unavailable" },
    });
    expect(statusLabels(null, true)?.data.text).toBe("Backend unreachable");
  });
});
