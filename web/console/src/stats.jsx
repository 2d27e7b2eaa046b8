// The caller's statistics: totals, completion rate and a timeline of the last 30 days.
// They are built from events, so they follow a change a moment later: the panel reloads
// after each change and every few seconds, and says when analytics last counted a change.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";

import * as api from "./api.js";
import { Notice } from "./notice.jsx";

const EVERY_MS = 5000;
// Two bars per day side by side: created, then completed.
const bars = (size, index) => uPlot.paths.bars({ size: [size, 40], align: index ? 1 : -1 });

function Timeline({ buckets }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || buckets.length === 0) return undefined;
    const xs = buckets.map((b) => Date.parse(`${b.date}T00:00:00Z`) / 1000);
    const width = Math.max(260, box.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 180,
        series: [
          {},
          { label: "created", stroke: "#1d4ed8", fill: "#1d4ed8", paths: bars(0.35, 0) },
          { label: "completed", stroke: "#047857", fill: "#047857", paths: bars(0.35, 1) },
        ],
        legend: { live: false },
        axes: [{}, { size: 40 }],
        // Half a day either side, so the first and last days' bars show whole.
        scales: { x: { time: true, range: (_u, min, max) => [min - 43200, max + 43200] } },
        cursor: { y: false },
      },
      [xs, buckets.map((b) => b.created), buckets.map((b) => b.completed)],
      box.current,
    );
    return () => plot.destroy();
  }, [buckets]);
  const created = buckets.reduce((n, b) => n + b.created, 0);
  const completed = buckets.reduce((n, b) => n + b.completed, 0);
  return (
    <figure class="timeline">
      <div ref={box} role="img" aria-label={`Timeline: ${created} created and ${completed} completed in 30 days`} />
      <figcaption>Tasks created and completed per day, last 30 days</figcaption>
    </figure>
  );
}

export function Stats({ changes }) {
  const [summary, setSummary] = useState(null);
  const [timeline, setTimeline] = useState([]);
  const [error, setError] = useState(null);
  const [checked, setChecked] = useState(null);

  useEffect(() => {
    let live = true;
    async function load() {
      try {
        const [s, t] = await Promise.all([
          api.get("/api/v1/analytics/summary"),
          api.get("/api/v1/analytics/timeline"),
        ]);
        if (!live) return;
        setSummary(s);
        setTimeline(t.buckets);
        setError(null);
      } catch (caught) {
        if (live) setError(caught);
      }
      if (live) setChecked(new Date());
    }
    load();
    const timer = setInterval(load, EVERY_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [changes]);

  return (
    <aside class="stats card" aria-labelledby="stats-title">
      <h2 id="stats-title">Statistics</h2>
      <Notice error={error} />
      {summary && (
        <>
          <p class="headline" data-testid="done-of-total">
            <strong>{summary.completed}</strong> of <strong>{summary.total}</strong> done
          </p>
          <dl class="numbers">
            <dt>Completion rate</dt>
            <dd>{Math.round(summary.completion_rate * 100)}%</dd>
            <dt>To do</dt>
            <dd>{summary.by_status.todo ?? 0}</dd>
            <dt>In progress</dt>
            <dd>{summary.by_status.in_progress ?? 0}</dd>
            <dt>Overdue</dt>
            <dd>{summary.overdue}</dd>
            <dt>Average time to complete</dt>
            <dd>{summary.avg_completion_seconds == null ? "—" : duration(summary.avg_completion_seconds)}</dd>
          </dl>
          <Timeline buckets={timeline} />
          <p class="updated" role="status">
            {summary.updated_at
              ? `Updated ${new Date(summary.updated_at).toLocaleTimeString()}`
              : "No change counted yet"}
            {checked && ` · checked ${checked.toLocaleTimeString()}`}
          </p>
        </>
      )}
    </aside>
  );
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}
