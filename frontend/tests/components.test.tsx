import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { KpiCards } from "@/components/KpiCards";
import { RowsTable } from "@/components/RowsTable";
import { statusLabels } from "@/components/StatusIndicator";
import { progressText } from "@/components/DataProgress";

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

describe("KpiCards colours and comparison", () => {
  it("colours a rising discount as bad news and an unknown direction as neutral", () => {
    const html = renderToStaticMarkup(
      <KpiCards
        kpis={[
          { name: "avg_discount", label: "Discount", value: 0.06, previous: 0.05, change_pct: 20, format: "percent", direction: "down" },
          { name: "quantity", label: "Quantity", value: 12, previous: 10, change_pct: 20, format: "number", direction: "neutral" },
        ]}
      />,
    );
    expect(html).toMatch(/class="change up bad"[^>]*>▲ \+20.0%/);
    expect(html).toMatch(/class="change up neutral"/);
    expect(html).toContain("vs 5%");
  });
  it("shows no comparison when the previous period is empty", () => {
    const html = renderToStaticMarkup(
      <KpiCards compare={false} kpis={[{ name: "rows", label: "Orders", value: 20000, previous: 0, change_pct: null, format: "count" }]} />,
    );
    expect(html).toContain("nothing earlier to compare");
    expect(html).not.toContain("no previous data");
    expect(html).not.toContain("vs ");
  });
});

describe("RowsTable", () => {
  it("captions columns with humanised names and says how many rows there really are", () => {
    const rows = Array.from({ length: 12 }, (_, i) => [`c${i}`, 8738825 + i]);
    const html = renderToStaticMarkup(<RowsTable columns={["country", "total_face_value"]} rows={rows} rowCount={48211} truncated />);
    expect(html).toContain(">Total face value<");
    expect(html).toContain("8,738,825");
    expect(html).toContain("The first 12 of 48,211 rows are shown");
  });

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

describe("DataProgress", () => {
  const build = { rows_read: 8_400_000, rows_total: 20_000_000, percent: 42, covered_from: "2024-10-03", newest_from: "2024-07-05" };
  it("says how much of the file is prepared, in rows", () => {
    expect(progressText({ ...build, phase: "reading" })).toBe("Preparing your data: 42% (8.4M of 20M rows)");
    expect(progressText({ ...build, phase: "reading", rows_read: 950, rows_total: 20_000, percent: 4.8 })).toBe(
      "Preparing your data: 4% (950 of 20K rows)",
    );
  });
  it("names the steps after reading", () => {
    expect(progressText({ ...build, phase: "summarising" })).toBe("Preparing your data: all rows read, summarising them");
    expect(progressText({ ...build, phase: "waiting", rows_read: 0 })).toBe("Preparing your data");
  });
});
