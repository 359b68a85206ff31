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
import type { ChartPlan } from "@/lib/chart";
import { formatCompact } from "@/lib/format";

const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569"];
const tick = { fontSize: 12, fill: "#637083" };
const compact = (v: number) => formatCompact(v);

/** Draws a bar, line, pie or scatter chart from a plan (tables and KPIs are drawn elsewhere). */
export default function AnswerChart({ plan, height = 300 }: { plan: ChartPlan; height?: number }) {
  const x = plan.x ?? "";
  let chart: React.ReactElement;
  switch (plan.type) {
    case "line":
      chart = (
        <LineChart data={plan.data} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey={x} tick={tick} minTickGap={20} />
          <YAxis tick={tick} width={64} tickFormatter={compact} />
          <Tooltip />
          {plan.ys.length > 1 && <Legend />}
          {plan.ys.map((y, i) => (
            <Line key={y} type="monotone" dataKey={y} stroke={COLORS[i % COLORS.length]} strokeWidth={2} dot={false} isAnimationActive={false} />
          ))}
        </LineChart>
      );
      break;
    case "pie":
      chart = (
        <PieChart>
          <Tooltip />
          <Legend />
          <Pie data={plan.data} dataKey={plan.ys[0]} nameKey={x} outerRadius="75%" isAnimationActive={false}>
            {plan.data.map((_, i) => (
              <PieCell key={i} fill={COLORS[i % COLORS.length]} />
            ))}
          </Pie>
        </PieChart>
      );
      break;
    case "scatter":
      chart = (
        <ScatterChart margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" />
          <XAxis type="number" dataKey={x} name={x} tick={tick} tickFormatter={compact} />
          <YAxis type="number" dataKey={plan.ys[0]} name={plan.ys[0]} tick={tick} width={64} tickFormatter={compact} />
          <Tooltip />
          <Scatter data={plan.data} fill={COLORS[0]} isAnimationActive={false} />
        </ScatterChart>
      );
      break;
    default:
      chart = (
        <BarChart data={plan.data} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey={x} tick={tick} interval="preserveStartEnd" />
          <YAxis tick={tick} width={64} tickFormatter={compact} />
          <Tooltip />
          {plan.ys.length > 1 && <Legend />}
          {plan.ys.map((y, i) => (
            <Bar key={y} dataKey={y} fill={COLORS[i % COLORS.length]} radius={[4, 4, 0, 0]} isAnimationActive={false} />
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
