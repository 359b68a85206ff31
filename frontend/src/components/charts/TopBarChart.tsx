"use client";
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MeasureFormat } from "@/lib/api";
import { formatValue, valueAxis } from "@/lib/format";

export default function TopBarChart({
  items,
  format,
  label,
  currency,
  height = 320,
}: {
  items: { label: string | null; value: number | null }[];
  format: MeasureFormat;
  label: string;
  currency?: string | null;
  height?: number;
}) {
  const data = items.map((i) => ({ label: i.label ?? "(empty)", value: i.value }));
  const axis = valueAxis(data.map((d) => d.value), format);
  return (
    <div className="chart-box" style={{ height }}>
      <ResponsiveContainer width="100%" height={height}>
        <BarChart data={data} layout="vertical" margin={{ top: 4, right: 16, bottom: 0, left: 4 }}>
          <CartesianGrid stroke="#eef1f5" horizontal={false} />
          <XAxis type="number" tick={{ fontSize: 12, fill: "#637083" }} ticks={axis.ticks} domain={axis.domain} tickFormatter={axis.tickFormatter} />
          <YAxis type="category" dataKey="label" width={110} tick={{ fontSize: 12, fill: "#1b2430" }} interval={0} />
          <Tooltip formatter={(v) => [formatValue(Number(v), format, currency), label]} />
          <Bar dataKey="value" fill="#2563eb" radius={[0, 4, 4, 0]} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
