import { describe, expect, it } from "vitest";
import {
  formatCell,
  formatChange,
  formatCompact,
  formatDate,
  formatPercent,
  formatValue,
  humanize,
  humanizeTitle,
  isRatioColumn,
  kpiView,
  niceTicks,
  tickFormatter,
} from "@/lib/format";

describe("formatValue", () => {
  it("formats money with two decimals and grouping, without guessing a symbol", () => {
    expect(formatValue(12345.6, "currency")).toBe("12,345.60");
    expect(formatValue(-5, "currency")).toBe("-5.00");
  });
  it("formats counts as whole numbers", () => {
    expect(formatValue(20000, "count")).toBe("20,000");
    expect(formatValue(1234.7, "count")).toBe("1,235");
  });
  it("formats plain numbers with at most two decimals", () => {
    expect(formatValue(3.14159, "number")).toBe("3.14");
    expect(formatValue(1000, "number")).toBe("1,000");
    expect(formatValue(0.036804, "number")).toBe("0.0368");
    expect(formatValue(0, "number")).toBe("0");
  });
  it("shows a dash for missing values", () => {
    expect(formatValue(null, "currency")).toBe("—");
    expect(formatValue(undefined)).toBe("—");
    expect(formatValue(Number.NaN)).toBe("—");
  });
});

describe("formatChange", () => {
  it("marks growth, decline and no change", () => {
    expect(formatChange(12.24, "up")).toEqual({ text: "+12.2%", trend: "up", tone: "good" });
    expect(formatChange(-3, "up")).toEqual({ text: "\u22123.0%", trend: "down", tone: "bad" });
    expect(formatChange(0.01, "up")).toEqual({ text: "0.0%", trend: "flat", tone: "neutral" });
  });
  it("colours by the measure's direction: a rising discount is not good news, unknown is neutral", () => {
    expect(formatChange(8, "down").tone).toBe("bad");
    expect(formatChange(-8, "down").tone).toBe("good");
    expect(formatChange(8).tone).toBe("neutral");
  });
  it("says there is nothing to compare with when change is null", () => {
    expect(formatChange(null)).toEqual({ text: "no previous data", trend: "none", tone: "neutral" });
  });
});

describe("kpiView", () => {
  it("combines label, value, previous and change", () => {
    expect(
      kpiView({ name: "revenue", label: "Revenue", value: 12345.6, previous: 11000, change_pct: 12.2, format: "currency" }),
    ).toEqual({ label: "Revenue", value: "12,345.60", previous: "11,000.00", change: { text: "+12.2%", trend: "up", tone: "neutral" } });
  });
  it("shows a ratio KPI and its previous value as percentages", () => {
    const v = kpiView({ name: "avg_discount", label: "Discount", value: 0.0501, previous: 0.05, change_pct: 0.2, format: "percent", direction: "down" });
    expect([v.value, v.previous]).toEqual(["5.01%", "5%"]);
  });
  it("puts the currency symbol on money when the profile names the currency", () => {
    expect(kpiView({ name: "fv", label: "Face Value", value: 12345.6, previous: null, change_pct: null, format: "currency" }, "EUR").value).toBe("€12,345.60");
  });
});

describe("small formatters", () => {
  it("compacts axis values", () => {
    expect(formatCompact(1_234_567)).toBe("1.2M");
    expect(formatCompact(12_300)).toBe("12.3K");
    expect(formatCompact(null)).toBe("");
  });
  it("renders table cells", () => {
    expect(formatCell(null)).toBe("NULL");
    expect(formatCell(42)).toBe("42");
    expect(formatCell(1234.567)).toBe("1,234.57");
    expect(formatCell(8738825)).toBe("8,738,825");
    expect(formatCell(0.055)).toBe("0.055");
    expect(formatCell(2024, "year")).toBe("2024");
    expect(formatCell(1042, "InvoiceId")).toBe("1042");
    expect(formatCell("Germany")).toBe("Germany");
    expect(formatCell(true)).toBe("true");
  });
  it("renders ISO dates for people and leaves other labels alone", () => {
    expect(formatDate("2024-01-05")).toBe("Jan 5, 2024");
    expect(formatDate("2024-W05")).toBe("2024-W05");
    expect(formatDate(null)).toBe("");
  });
});

describe("figures for people (issue cases)", () => {
  it("groups thousands instead of showing raw numbers", () => {
    expect(formatValue(8738825, "number")).toBe("8,738,825");
    expect(formatValue(8738825, "count")).toBe("8,738,825");
  });
  it("keeps significant digits of small values instead of rounding to two decimals", () => {
    expect(formatValue(0.055, "number")).toBe("0.055");
    expect(formatValue(0.00123, "number")).toBe("0.00123");
    expect(formatValue(0.004, "currency")).toBe("0.004");
  });
  it("shows ratios as percentages", () => {
    expect(formatPercent(0.0501)).toBe("5.01%");
    expect(formatPercent(0.05)).toBe("5%");
    expect(formatPercent(0.055)).toBe("5.5%");
    expect(formatValue(0.25, "percent")).toBe("25%");
    expect(isRatioColumn("avg_discount", [0.0526, 0.05])).toBe(true);
    expect(formatCell(0.0526, "avg_discount", true)).toBe("5.26%");
    expect(isRatioColumn("discount_amount", [0.5])).toBe(false); // money, not a share
    expect(isRatioColumn("eur_rate", [0.92])).toBe(false); // an exchange rate
    expect(isRatioColumn("avg_discount", [0.2, 3])).toBe(false); // not 0..1
    expect(formatPercent(null)).toBe("—");
  });
  it("captions columns with humanised names, not aliases", () => {
    expect(humanize("total_face_value")).toBe("Total face value");
    expect(humanize("BillingCountry")).toBe("Billing country");
    expect(humanize("row_count")).toBe("Row count");
    expect(humanize("SKU")).toBe("SKU");
    expect(humanizeTitle("total_face_value by country")).toBe("Total face value by country");
    expect(humanizeTitle("total_product_key")).toBe("Total product key");
    expect(humanizeTitle("Total reports to by LastName")).toBe("Total reports to by last name");
    expect(humanizeTitle("Revenue by month in 2024")).toBe("Revenue by month in 2024");
  });
  it("makes axis ticks that never repeat a label, small values included", () => {
    for (const [lo, hi] of [
      [0, 0.1],
      [0, 0.013],
      [0, 7],
      [0, 1234],
      [0, 8738825],
      [-250, 1000],
      [0, 0.9],
    ]) {
      const ticks = niceTicks(lo, hi);
      const labels = ticks.map(tickFormatter(ticks));
      expect(new Set(labels).size, `${lo}..${hi}: ${labels.join(", ")}`).toBe(labels.length);
      expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(hi);
    }
    const small = niceTicks(0, 0.1);
    expect(small.map(tickFormatter(small))).toEqual(["0", "0.025", "0.05", "0.075", "0.1"]);
    const big = niceTicks(0, 8738825);
    expect(big.map(tickFormatter(big))).toEqual(["0", "2.5M", "5M", "7.5M", "10M"]);
    const thousands = niceTicks(0, 1200);
    expect(thousands.map(tickFormatter(thousands))).toEqual(["0", "500", "1K", "1.5K"]);
    const pct = niceTicks(0, 0.1);
    expect(pct.map(tickFormatter(pct, "percent"))).toEqual(["0%", "2.5%", "5%", "7.5%", "10%"]);
  });
});
