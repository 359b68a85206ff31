"use client";
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell as PieCell,
  Legend,
  Line,
  LineChart,
  Pie,
  PieChart,
  ResponsiveContainer,
  Scatter,
  ScatterChart,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { PCT, type ChartPlan } from "@/lib/chart";
import { formatCell, formatPercent, humanize, isRatioColumn, valueAxis } from "@/lib/format";

const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569"];
const tick = { fontSize: 12, fill: "#637083" };

/** Draws a bar, line, pie or scatter chart from a plan (tables and KPIs are drawn elsewhere). */
export default function AnswerChart({ plan, height = 300 }: { plan: ChartPlan; height?: number }) {
  const x = plan.x ?? "";
  const values = plan.data.flatMap((r) => plan.ys.map((y) => r[y] as number | null));
  const ratio = plan.ys.length === 1 && isRatioColumn(plan.ys[0], values);
  const axis = valueAxis(values, ratio ? "percent" : "number");
  const tooltip = (v: unknown, name: unknown) => [formatCell(typeof v === "number" ? v : String(v), String(name), ratio), humanize(String(name))];
  const legend = (v: string) => humanize(v);
  let chart: React.ReactElement;
  switch (plan.type) {
    case "line":
      chart = (
        <LineChart data={plan.data} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey={x} tick={tick} minTickGap={20} />
          <YAxis tick={tick} width={56} ticks={axis.ticks} domain={axis.domain} tickFormatter={axis.tickFormatter} />
          <Tooltip formatter={tooltip} />
          {plan.ys.length > 1 && <Legend itemSorter={null} formatter={legend} />}
          {plan.ys.map((y, i) => (
            <Line key={y} type="monotone" dataKey={y} name={y} stroke={COLORS[i % COLORS.length]} strokeWidth={2} dot={false} isAnimationActive={false} />
          ))}
        </LineChart>
      );
      break;
    case "pie": {
      const y = plan.ys[0];
      chart = (
        <PieChart>
          <Tooltip formatter={(v, _n, item) => [`${formatCell(Number(v), y)} (${formatPercent(Number(item?.payload?.[PCT]))})`, humanize(y)]} />
          <Legend
            itemSorter={null}
            formatter={(value: string, entry) => {
              const pct = (entry?.payload as Record<string, unknown> | undefined)?.[PCT];
              return `${value} ${typeof pct === "number" ? formatPercent(pct) : ""}`.trim();
            }}
          />
          <Pie
            data={plan.data}
            dataKey={y}
            nameKey={x}
            outerRadius="70%"
            isAnimationActive={false}
            label={(p: { payload?: Record<string, unknown> }) => formatPercent(Number(p.payload?.[PCT] ?? 0))}
            labelLine={false}
          >
            {plan.data.map((_, i) => (
              <PieCell key={i} fill={COLORS[i % COLORS.length]} />
            ))}
          </Pie>
        </PieChart>
      );
      break;
    }
    case "scatter": {
      const xAxis = valueAxis(plan.data.map((r) => r[x] as number | null));
      chart = (
        <ScatterChart margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" />
          <XAxis type="number" dataKey={x} name={humanize(x)} tick={tick} ticks={xAxis.ticks} domain={xAxis.domain} tickFormatter={xAxis.tickFormatter} />
          <YAxis type="number" dataKey={plan.ys[0]} name={humanize(plan.ys[0])} tick={tick} width={56} ticks={axis.ticks} domain={axis.domain} tickFormatter={axis.tickFormatter} />
          <Tooltip />
          <Scatter data={plan.data} fill={COLORS[0]} isAnimationActive={false} />
        </ScatterChart>
      );
      break;
    }
    default:
      chart = (
        <BarChart data={plan.data} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey={x} tick={tick} interval="preserveStartEnd" />
          <YAxis tick={tick} width={56} ticks={axis.ticks} domain={axis.domain} tickFormatter={axis.tickFormatter} />
          <Tooltip formatter={tooltip} />
          {plan.ys.length > 1 && <Legend itemSorter={null} formatter={legend} />}
          {plan.ys.map((y, i) => (
            <Bar key={y} dataKey={y} name={y} fill={COLORS[i % COLORS.length]} radius={[4, 4, 0, 0]} isAnimationActive={false} />
          ))}
        </BarChart>
      );
  }
  return (
    <div className="chart-box" style={{ height }} data-testid="answer-chart" data-chart-type={plan.type}>
      <ResponsiveContainer width="100%" height={height}>
        {chart}
      </ResponsiveContainer>
    </div>
  );
}
