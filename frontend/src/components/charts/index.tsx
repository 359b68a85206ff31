"use client";
// Charts are loaded after the page shell so that the chart library stays out of the first load.
import dynamic from "next/dynamic";

const placeholder = (height: number) =>
  function ChartPlaceholder() {
    return <div className="skeleton" style={{ height }} />;
  };

export const TimeSeriesChart = dynamic(() => import("./TimeSeriesChart"), { ssr: false, loading: placeholder(300) });
export const TopBarChart = dynamic(() => import("./TopBarChart"), { ssr: false, loading: placeholder(320) });
export const AnswerChart = dynamic(() => import("./AnswerChart"), { ssr: false, loading: placeholder(300) });
