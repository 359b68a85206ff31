import { describe, expect, it } from "vitest";
import { defaultGranularity, presetRange, rangeDays } from "@/lib/dates";

describe("presetRange", () => {
  it("counts back from the data's last date, both ends included", () => {
    expect(presetRange("30d", "2023-01-01", "2024-12-31")).toEqual({ start: "2024-12-02", end: "2024-12-31" });
    expect(presetRange("90d", "2023-01-01", "2024-12-31")).toEqual({ start: "2024-10-03", end: "2024-12-31" });
    expect(presetRange("12m", "2023-01-01", "2024-12-31")).toEqual({ start: "2024-01-01", end: "2024-12-31" });
  });
  it("never starts before the first date", () => {
    expect(presetRange("12m", "2024-06-15", "2024-12-31")).toEqual({ start: "2024-06-15", end: "2024-12-31" });
    expect(presetRange("all", "2023-01-01", "2024-12-31")).toEqual({ start: "2023-01-01", end: "2024-12-31" });
  });
  it("handles month ends and leap days", () => {
    expect(presetRange("30d", "2020-01-01", "2024-03-01")).toEqual({ start: "2024-02-01", end: "2024-03-01" });
    expect(presetRange("12m", "2020-01-01", "2024-02-29")).toEqual({ start: "2023-03-02", end: "2024-02-29" });
  });
});

describe("defaultGranularity", () => {
  it("picks days for a month, weeks for 90 days or a year, months beyond", () => {
    expect(defaultGranularity(rangeDays("2024-12-02", "2024-12-31"))).toBe("day");
    expect(defaultGranularity(rangeDays("2024-10-03", "2024-12-31"))).toBe("week");
    expect(defaultGranularity(rangeDays("2024-01-01", "2024-12-31"))).toBe("week");
    expect(defaultGranularity(rangeDays("2023-01-01", "2024-12-31"))).toBe("month");
  });
});
