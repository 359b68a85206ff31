"use client";
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MeasureFormat } from "@/lib/api";
import { formatValue, valueAxis } from "@/lib/format";

/** The series over every period of the range (the backend fills empty ones), so the x axis is real time. */
export default function TimeSeriesChart({
  points,
  format,
  label,
  currency,
  height = 300,
}: {
  points: { period: string; value: number | null }[];
  format: MeasureFormat;
  label: string;
  currency?: string | null;
  height?: number;
}) {
  const axis = valueAxis(points.map((p) => p.value), format);
  return (
    <div className="chart-box" style={{ height }}>
      <ResponsiveContainer width="100%" height={height}>
        <AreaChart data={points} margin={{ top: 8, right: 12, bottom: 0, left: 4 }}>
          <defs>
            <linearGradient id="tsFill" x1="0" y1="0" x2="0" y2="1">
              <stop offset="0%" stopColor="#2563eb" stopOpacity={0.25} />
              <stop offset="100%" stopColor="#2563eb" stopOpacity={0.02} />
            </linearGradient>
          </defs>
          <CartesianGrid stroke="#eef1f5" vertical={false} />
          <XAxis dataKey="period" tick={{ fontSize: 12, fill: "#637083" }} minTickGap={24} />
          <YAxis tick={{ fontSize: 12, fill: "#637083" }} width={56} ticks={axis.ticks} domain={axis.domain} tickFormatter={axis.tickFormatter} />
          <Tooltip formatter={(v) => [formatValue(v === null || v === undefined ? null : Number(v), format, currency), label]} />
          <Area
            type="linear"
            dataKey="value"
            connectNulls={false}
            stroke="#2563eb"
            strokeWidth={2}
            fill="url(#tsFill)"
            dot={points.length <= 31 ? { r: 3 } : false}
            isAnimationActive={false}
          />
        </AreaChart>
      </ResponsiveContainer>
    </div>
  );
}
