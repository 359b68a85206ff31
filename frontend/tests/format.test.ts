import { describe, expect, it } from "vitest";
import { formatCell, formatChange, formatCompact, formatDate, formatValue, kpiView } from "@/lib/format";

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
    expect(formatChange(12.24)).toEqual({ text: "+12.2%", trend: "up" });
    expect(formatChange(-3)).toEqual({ text: "\u22123.0%", trend: "down" });
    expect(formatChange(0.01)).toEqual({ text: "0.0%", trend: "flat" });
  });
  it("says there is nothing to compare with when change is null", () => {
    expect(formatChange(null)).toEqual({ text: "no previous data", trend: "none" });
  });
});

describe("kpiView", () => {
  it("combines label, value, previous and change", () => {
    expect(
      kpiView({ name: "revenue", label: "Revenue", value: 12345.6, previous: 11000, change_pct: 12.2, format: "currency" }),
    ).toEqual({ label: "Revenue", value: "12,345.60", previous: "11,000.00", change: { text: "+12.2%", trend: "up" } });
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
    expect(formatCell("Germany")).toBe("Germany");
    expect(formatCell(true)).toBe("true");
  });
  it("renders ISO dates for people and leaves other labels alone", () => {
    expect(formatDate("2024-01-05")).toBe("Jan 5, 2024");
    expect(formatDate("2024-W05")).toBe("2024-W05");
    expect(formatDate(null)).toBe("");
  });
});
