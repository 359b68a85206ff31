"use client";
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MeasureFormat } from "@/lib/api";
import { formatCompact, formatValue } from "@/lib/format";

export default function TimeSeriesChart({
  points,
  format,
  label,
  height = 300,
}: {
  points: { period: string; value: number | null }[];
  format: MeasureFormat;
  label: string;
  height?: number;
}) {
  return (
    <div className="chart-box" style={{ height }}>
      <ResponsiveContainer width="100%" height={height}>
        <AreaChart data={points} margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <defs>
            <linearGradient id="tsFill" x1="0" y1="0" x2="0" y2="1">
              <stop offset="0%" stopColor="#2563eb" stopOpacity={0.25} />
              <stop offset="100%" stopColor="#2563eb" stopOpacity={0.02} />
            </linearGradient>
          </defs>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey="period" tick={{ fontSize: 12, fill: "#637083" }} minTickGap={24} />
          <YAxis
            tick={{ fontSize: 12, fill: "#637083" }}
            width={64}
            tickFormatter={(v: number) => formatCompact(v)}
          />
          <Tooltip formatter={(v) => [formatValue(Number(v), format), label]} />
          <Area type={points.length <= 3 ? "linear" : "monotone"} dataKey="value" stroke="#2563eb" strokeWidth={2} fill="url(#tsFill)" dot={points.length <= 31 ? { r: 3 } : false} isAnimationActive={false} />
        </AreaChart>
      </ResponsiveContainer>
    </div>
  );
}
