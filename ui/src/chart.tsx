// Metric charts on uPlot: a canvas chart built for many points (tens of thousands per series
// draw in milliseconds), where an SVG chart would create one DOM node per point.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  /** The series' colour; by position when absent. */
  color?: string;
  /** x values (steps, or times in ms), ascending. */
  xs: number[];
  ys: number[];
}

export interface ChartOptions {
  x: "step" | "time";
  log: boolean;
  /** Exponential moving average weight in [0, 1); 0 draws the raw values. */
  smoothing: number;
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4f46e5", "#b45309"];

export function color(i: number): string {
  if (i < PALETTE.length) return PALETTE[i];
  return `hsl(${(i * 137.508) % 360} 65% 45%)`;
}

/** TensorBoard's debiased exponential moving average. */
export function smooth(ys: number[], weight: number): number[] {
  if (weight <= 0) return ys;
  const out = new Array<number>(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

/** The series with x ascending, as uPlot needs (times of a step-ordered history may not be). */
function ascending(s: Series): { xs: number[]; ys: number[] } {
  let sorted = true;
  for (let i = 1; i < s.xs.length && sorted; i++) sorted = s.xs[i - 1] <= s.xs[i];
  if (sorted) return s;
  const order = s.xs.map((_, i) => i).sort((a, b) => s.xs[a] - s.xs[b]);
  return { xs: order.map((i) => s.xs[i]), ys: order.map((i) => s.ys[i]) };
}

export function Chart({ title, series, options, height = 260 }: { title: string; series: Series[]; options: ChartOptions; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = el.current;
    if (!host) return;
    const tables = series.map((s) => {
      const { xs: x0, ys: y0 } = ascending(s);
      const xs = options.x === "time" ? x0.map((t) => t / 1000) : x0;
      const ys = smooth(y0, options.smoothing).map((y) => (options.log && y <= 0 ? null : y));
      return [xs, ys] as uPlot.AlignedData;
    });
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const opts: uPlot.Options = {
      title,
      width: Math.max(320, host.clientWidth),
      height,
      scales: { x: { time: options.x === "time" }, y: { distr: options.log ? 3 : 1 } },
      series: [
        { label: options.x === "time" ? "time" : "step" },
        ...series.map((s, i) => ({ label: s.label, stroke: s.color ?? color(i), width: 1.5, spanGaps: true, points: { show: s.xs.length < 60 } })),
      ],
      legend: { show: series.length <= 12 },
      axes: [{ stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.2)" } }, { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.2)" } }],
    };
    const plot = new uPlot(opts, data, host);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(320, host.clientWidth), height }));
    resize.observe(host);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, options.x, options.log, options.smoothing, title, height]);
  return <div class="chart" ref={el} role="img" aria-label={`chart of ${title}`} />;
}

export function ChartControls({ options, onChange }: { options: ChartOptions; onChange: (o: ChartOptions) => void }) {
  return (
    <div class="toolbar">
      <label>
        x axis{" "}
        <select value={options.x} onChange={(e) => onChange({ ...options, x: (e.target as HTMLSelectElement).value as "step" | "time" })}>
          <option value="step">step</option>
          <option value="time">time</option>
        </select>
      </label>
      <label>
        <input type="checkbox" checked={options.log} onChange={(e) => onChange({ ...options, log: (e.target as HTMLInputElement).checked })} /> log scale
      </label>
      <label>
        smoothing{" "}
        <input
          type="range"
          min="0"
          max="0.99"
          step="0.01"
          value={options.smoothing}
          onInput={(e) => onChange({ ...options, smoothing: Number((e.target as HTMLInputElement).value) })}
        />{" "}
        {options.smoothing.toFixed(2)}
      </label>
    </div>
  );
}
