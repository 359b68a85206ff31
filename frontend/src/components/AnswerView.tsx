"use client";
import { useMemo } from "react";
import type { ChatAnswer } from "@/lib/api";
import { planChart } from "@/lib/chart";
import { formatCell, humanize, humanizeTitle, isRatioColumn } from "@/lib/format";
import { AnswerChart } from "./charts";
import { RowsTable } from "./RowsTable";
import { SqlBlock } from "./SqlBlock";

export function AnswerView({ answer }: { answer: ChatAnswer }) {
  const plan = useMemo(() => planChart(answer.chart, answer.columns, answer.rows), [answer]);
  if (answer.error) {
    return (
      <div className="turn-a" data-testid="answer" data-state="error">
        <div className="notice error" role="alert" data-testid="answer-error">
          <strong>No answer this time</strong>
          <span>{answer.error}</span>
        </div>
        {answer.sql && <SqlBlock sql={answer.sql} detail={answer.error_detail ?? undefined} />}
      </div>
    );
  }
  return (
    <div className="turn-a" data-testid="answer" data-state="ok">
      {answer.title && <h3 data-testid="answer-title">{humanizeTitle(answer.title)}</h3>}
      {plan.type === "kpi" ? (
        <div className="kpi-answer" data-testid="answer-chart" data-chart-type="kpi">
          {formatCell(plan.data[0]?.[plan.ys[0]] ?? null, plan.ys[0], isRatioColumn(plan.ys[0], [plan.data[0]?.[plan.ys[0]] ?? null]))}
          <div className="muted" style={{ fontSize: "0.85rem", fontWeight: 400 }} data-testid="kpi-caption">
            {humanize(plan.ys[0])}
          </div>
        </div>
      ) : plan.type !== "table" ? (
        <AnswerChart plan={plan} />
      ) : null}
      {plan.note && <p className="muted" style={{ fontSize: "0.85rem" }}>{plan.note}</p>}
      <div style={{ marginTop: 12 }}>
        <RowsTable
          columns={answer.columns}
          rows={answer.rows}
          rowCount={answer.truncated ? answer.total_rows ?? answer.row_count : answer.row_count}
          truncated={answer.truncated}
        />
      </div>
      {answer.sql && <SqlBlock sql={answer.sql} />}
    </div>
  );
}
