import { describe, expect, it } from "vitest";
import { defaultGranularity, partialEnds, partialNote, presetRange, rangeDays } from "@/lib/dates";

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

describe("partial periods at the ends of the range", () => {
  it("knows when a week or month is cut short", () => {
    expect(partialEnds("2024-10-07", "2024-12-29", "week")).toEqual({ first: false, last: false }); // Monday..Sunday
    expect(partialEnds("2024-10-02", "2024-12-30", "week")).toEqual({ first: true, last: true });
    expect(partialEnds("2024-01-01", "2024-12-31", "month")).toEqual({ first: false, last: false });
    expect(partialEnds("2024-01-15", "2024-02-29", "month")).toEqual({ first: true, last: false });
    expect(partialEnds("2024-01-15", "2024-02-28", "day")).toEqual({ first: false, last: false });
  });
  it("says so in words", () => {
    expect(partialNote("2024-10-02", "2024-12-30", "week")).toBe("The first and last weeks are only partly in the range, so their totals are lower.");
    expect(partialNote("2024-01-01", "2024-02-10", "month")).toBe("The last month is only partly in the range, so its total is lower.");
    expect(partialNote("2024-01-01", "2024-12-31", "month")).toBeNull();
  });
});
