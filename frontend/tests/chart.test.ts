import { describe, expect, it } from "vitest";
import { PCT, paginate, planChart } from "@/lib/chart";

const cols = ["country", "revenue"];
const rows = [
  ["Germany", 120.5],
  ["France", 80],
  ["Spain", 40.25],
];

describe("planChart", () => {
  it("follows the backend's bar spec with rows as objects", () => {
    const p = planChart({ type: "bar", x: "country", y: "revenue" }, cols, rows);
    expect(p.type).toBe("bar");
    expect(p.x).toBe("country");
    expect(p.ys).toEqual(["revenue"]);
    expect(p.data[0]).toEqual({ country: "Germany", revenue: 120.5 });
    expect(p.note).toBeNull();
  });

  it("shows a single value as a KPI whatever the spec says", () => {
    const p = planChart({ type: "bar", x: "n", y: "n" }, ["n"], [[20000]]);
    expect(p.type).toBe("kpi");
    expect(p.ys).toEqual(["n"]);
  });

  it("picks x and y itself when the spec names missing columns", () => {
    const p = planChart({ type: "line", x: "month", y: "total" }, cols, rows);
    expect(p.type).toBe("line");
    expect(p.x).toBe("country");
    expect(p.ys).toEqual(["revenue"]);
  });

  it("falls back to a table when nothing is numeric", () => {
    const p = planChart({ type: "bar", x: "a", y: "b" }, ["a", "b"], [["x", "y"]]);
    expect(p.type).toBe("table");
    expect(p.note).toMatch(/No numeric column/);
  });

  it("draws a pie with many slices as bars and says so", () => {
    const many = Array.from({ length: 20 }, (_, i) => [`c${i}`, i]);
    const p = planChart({ type: "pie", x: "country", y: "revenue" }, cols, many);
    expect(p.type).toBe("bar");
    expect(p.note).toMatch(/Too many slices/);
    expect(planChart({ type: "pie", x: "country", y: "revenue" }, cols, rows).type).toBe("pie");
  });

  it("gives each pie slice its share and sums the smallest beyond eight as Other", () => {
    const twelve = Array.from({ length: 12 }, (_, i) => [`c${i}`, (i + 1) * 10]); // 10..120, total 780
    const p = planChart({ type: "pie", x: "country", y: "revenue" }, cols, twelve);
    expect(p.type).toBe("pie");
    expect(p.data.map((d) => d.country)).toEqual(["c11", "c10", "c9", "c8", "c7", "c6", "c5", "Other"]);
    expect(p.data[7].revenue).toBe(10 + 20 + 30 + 40 + 50);
    expect(p.data[0][PCT]).toBeCloseTo(120 / 780);
    expect(p.data.reduce((s, d) => s + (d[PCT] as number), 0)).toBeCloseTo(1);
    expect(p.note).toMatch(/5 smallest .* "Other"/);
    const three = planChart({ type: "pie", x: "country", y: "revenue" }, cols, [["DE", 3], ["FR", 1]]);
    expect(three.data.map((d) => d[PCT])).toEqual([0.75, 0.25]);
  });

  it("needs a numeric x for a scatter", () => {
    expect(planChart({ type: "scatter", x: "country", y: "revenue" }, cols, rows).type).toBe("bar");
    const p = planChart({ type: "scatter", x: "qty", y: "revenue" }, ["qty", "revenue"], [[1, 2], [3, 4]]);
    expect(p).toMatchObject({ type: "scatter", x: "qty", ys: ["revenue"] });
  });

  it("pivots a series column into one line per value", () => {
    const p = planChart(
      { type: "line", x: "month", y: "revenue", series: "channel" },
      ["month", "channel", "revenue"],
      [
        ["2024-01", "Online", 1],
        ["2024-01", "Store", 2],
        ["2024-02", "Online", 3],
      ],
    );
    expect(p.ys).toEqual(["Online", "Store"]);
    expect(p.data).toEqual([
      { month: "2024-01", Online: 1, Store: 2 },
      { month: "2024-02", Online: 3 },
    ]);
  });

  it("is a table for a table spec, no spec or no rows", () => {
    expect(planChart({ type: "table" }, cols, rows).type).toBe("table");
    expect(planChart(null, cols, rows).type).toBe("table");
    expect(planChart({ type: "bar", x: "country", y: "revenue" }, cols, []).type).toBe("table");
  });
});

describe("paginate", () => {
  const items = Array.from({ length: 23 }, (_, i) => i);
  it("splits into pages and clamps the page number", () => {
    expect(paginate(items, 0, 10)).toEqual({ items: items.slice(0, 10), page: 0, pages: 3 });
    expect(paginate(items, 2, 10).items).toEqual([20, 21, 22]);
    expect(paginate(items, 9, 10).page).toBe(2);
    expect(paginate([], 0, 10)).toEqual({ items: [], page: 0, pages: 1 });
  });
});
