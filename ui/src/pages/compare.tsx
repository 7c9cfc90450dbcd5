// Many runs side by side: overlaid metric charts (sampled on the server with MLflow's
// get-history-bulk-interval contract: at most 2,500 points per run), a difference table of
// params and metrics, parallel coordinates and a scatter of a metric against a param.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { mlflow, type Metric, type Run } from "../api";
import { Chart, ChartControls, color, type ChartOptions } from "../chart";
import { link, type Location } from "../router";
import { ErrorBox, Loaded, Section, num, useAsync } from "../ui";

/** MLflow's UI links `#/compare-runs?runs=["a","b"]`; Sextant's `#/compare?runs=a,b`. */
export function runIds(loc: Location): string[] {
  const raw = loc.query.get("runs") ?? "";
  if (raw.startsWith("[")) {
    try {
      return (JSON.parse(raw) as string[]).map(String);
    } catch {
      return [];
    }
  }
  return raw.split(",").filter(Boolean);
}

const MAX_RUNS = 100;

/** `experiment=1` (Sextant's links) or MLflow's `experiments=["1","2"]`. */
function experimentIds(loc: Location): string[] {
  const raw = loc.query.get("experiments") ?? loc.query.get("experiment") ?? "";
  if (raw.startsWith("[")) {
    try {
      return (JSON.parse(raw) as string[]).map(String);
    } catch {
      return [];
    }
  }
  return raw.split(",").filter(Boolean);
}

/** The runs in the order asked: one search when their experiments are known, else one
 * `runs/get` each. */
async function loadRuns(ids: string[], experiments: string[], signal: AbortSignal): Promise<Run[]> {
  if (experiments.length && ids.length) {
    const filter = `attributes.run_id IN (${ids.map((id) => `'${id.replace(/'/g, "")}'`).join(", ")})`;
    const found = await mlflow.post<{ runs?: Run[] }>(
      "runs/search",
      { experiment_ids: experiments, filter, max_results: ids.length, run_view_type: "ALL" },
      signal,
    );
    const byId = new Map((found.runs ?? []).map((r) => [r.info.run_id, r]));
    if (ids.every((id) => byId.has(id))) return ids.map((id) => byId.get(id)!);
  }
  return Promise.all(ids.map((id) => mlflow.get<{ run: Run }>("runs/get", { run_id: id }, signal).then((r) => r.run)));
}

export function ComparePage({ loc }: { loc: Location }) {
  const charts = loc.query.get("charts");
  const ids = runIds(loc).slice(0, MAX_RUNS);
  const experiments = experimentIds(loc);
  const state = useAsync((signal) => loadRuns(ids, experiments, signal), [ids.join(","), experiments.join(",")]);
  return (
    <>
      <h1>Compare {ids.length} runs</h1>
      {runIds(loc).length > MAX_RUNS && <p class="muted">Showing the first {MAX_RUNS} runs.</p>}
      <Loaded state={state}>{(runs) => <CompareBody runs={runs} charts={charts} />}</Loaded>
    </>
  );
}

function name(r: Run) {
  return r.info.run_name || r.info.run_id.slice(0, 8);
}

/** Points per run asked of the server: detail while few runs share a chart, MLflow UI's default
 * (320) for a few dozen, 100 beyond 50 runs — a chart about 700 pixels wide shows no more, and
 * 100 runs then cost 10,000 points (about 1 MB of MLflow's JSON) a chart instead of 32,000. */
function pointsPerRun(runs: number): number {
  return runs <= 10 ? 2500 : runs <= 25 ? 1000 : runs <= 50 ? 320 : 100;
}

function CompareBody({ runs, charts }: { runs: Run[]; charts: string | null }) {
  const metricKeys = useMemo(() => [...new Set(runs.flatMap((r) => (r.data.metrics ?? []).map((m) => m.key)))].sort(), [runs]);
  const paramKeys = useMemo(() => [...new Set(runs.flatMap((r) => (r.data.params ?? []).map((p) => p.key)))].sort(), [runs]);
  const [charted, setCharted] = useState<string[]>(() =>
    charts === "all" ? metricKeys : charts ? charts.split(",").filter((k) => metricKeys.includes(k)) : metricKeys.slice(0, 4),
  );
  const [options, setOptions] = useState<ChartOptions>({ x: "step", log: false, smoothing: 0 });
  const [onlyDiff, setOnlyDiff] = useState(true);
  const metric = (r: Run, k: string) => r.data.metrics?.find((m) => m.key === k)?.value;
  const param = (r: Run, k: string) => r.data.params?.find((p) => p.key === k)?.value;
  const differs = (vals: (string | number | undefined)[]) => new Set(vals.map(String)).size > 1;
  const paramRows = paramKeys.filter((k) => !onlyDiff || differs(runs.map((r) => param(r, k))));
  const metricRows = metricKeys.filter((k) => !onlyDiff || differs(runs.map((r) => metric(r, k))));

  return (
    <>
      <Section title="Metric charts">
        <fieldset class="keys">
          <legend>Metrics to chart</legend>
          {metricKeys.map((k) => (
            <label key={k}>
              <input type="checkbox" checked={charted.includes(k)} onChange={() => setCharted(charted.includes(k) ? charted.filter((x) => x !== k) : [...charted, k])} /> {k}
            </label>
          ))}
        </fieldset>
        <ChartControls options={options} onChange={setOptions} />
        <div class="charts">
          {charted.map((k) => (
            <RunsChart key={k} metric={k} runs={runs} options={options} />
          ))}
        </div>
      </Section>
      <Section
        title="Differences"
        actions={
          <label>
            <input type="checkbox" checked={onlyDiff} onChange={() => setOnlyDiff(!onlyDiff)} /> only rows that differ
          </label>
        }
      >
        <div class="scroll" tabIndex={0}>
          <table class="grid diff">
            <thead>
              <tr>
                <th scope="col">Key</th>
                {runs.map((r, i) => (
                  <th scope="col" key={r.info.run_id}>
                    <span class="swatch" style={{ background: color(i) }} />
                    <a href={link("experiments", r.info.experiment_id, "runs", r.info.run_id)}>{name(r)}</a>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {paramRows.map((k) => (
                <tr key={`p.${k}`}>
                  <th scope="row">
                    <span class="muted">param </span>
                    {k}
                  </th>
                  {runs.map((r) => (
                    <td key={r.info.run_id}>{param(r, k) ?? "—"}</td>
                  ))}
                </tr>
              ))}
              {metricRows.map((k) => (
                <tr key={`m.${k}`}>
                  <th scope="row">
                    <span class="muted">metric </span>
                    {k}
                  </th>
                  {runs.map((r) => (
                    <td key={r.info.run_id} class="num">
                      {num(metric(r, k))}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <Section title="Parallel coordinates">
        <Parallel runs={runs} axes={[...paramKeys.map((k) => ({ k, get: (r: Run) => param(r, k) })), ...metricKeys.map((k) => ({ k, get: (r: Run) => metric(r, k) }))].slice(0, 12)} />
      </Section>
      <Section title="Scatter">
        <Scatter runs={runs} params={paramKeys} metrics={metricKeys} param={param} metric={metric} />
      </Section>
    </>
  );
}

/** One metric over many runs, fetched (sampled by the server) once the chart nears the screen. */
function RunsChart({ metric, runs, options }: { metric: string; runs: Run[]; options: ChartOptions }) {
  const box = useRef<HTMLDivElement>(null);
  const [visible, setVisible] = useState(false);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setVisible(true), { rootMargin: "400px" });
    io.observe(el);
    return () => io.disconnect();
  }, []);
  const state = useAsync(
    async (signal) => {
      if (!visible) return undefined;
      const ids = runs.map((r) => r.info.run_id);
      const page = await mlflow.get<{ metrics?: Metric[] }>(
        "metrics/get-history-bulk-interval",
        { run_ids: ids, metric_key: metric, max_results: pointsPerRun(ids.length) },
        signal,
      );
      const byRun = new Map<string, Metric[]>();
      for (const p of page.metrics ?? []) {
        const list = byRun.get(p.run_id ?? "");
        if (list) list.push(p);
        else byRun.set(p.run_id ?? "", [p]);
      }
      return byRun;
    },
    [visible, metric, runs],
  );
  const series = useMemo(
    () =>
      runs
        .map((r, i) => {
          const mine = state.data?.get(r.info.run_id) ?? [];
          // The run's colour everywhere on the page (the table's swatches too), whichever runs have this metric.
          return { label: name(r), color: color(i), xs: mine.map((p) => (options.x === "time" ? p.timestamp : p.step)), ys: mine.map((p) => p.value) };
        })
        .filter((s) => s.xs.length),
    [state.data, runs, options.x],
  );
  return (
    <div ref={box} class="chart-box">
      {state.error ? <ErrorBox error={state.error} /> : state.data ? <Chart title={metric} series={series} options={options} /> : <p class="muted chart-pending">{metric}: loading…</p>}
    </div>
  );
}

interface Axis {
  k: string;
  get: (r: Run) => string | number | undefined;
}

/** One vertical axis per param or metric; numbers scaled to their range, text spread evenly. */
function Parallel({ runs, axes }: { runs: Run[]; axes: Axis[] }) {
  if (axes.length < 2) return <p class="muted">Needs at least two params or metrics.</p>;
  const W = 1000;
  const H = 300;
  // Room for the outer axes' labels, which are centred on their axis.
  const padX = 80;
  const pad = 30;
  const scale = axes.map((a) => {
    const vals = runs.map((r) => a.get(r)).filter((v) => v !== undefined);
    const nums = vals.map(Number);
    if (nums.every(Number.isFinite)) {
      const lo = Math.min(...nums);
      const hi = Math.max(...nums);
      return (v: string | number | undefined) => (v === undefined ? null : hi === lo ? 0.5 : (Number(v) - lo) / (hi - lo));
    }
    const cats = [...new Set(vals.map(String))].sort();
    return (v: string | number | undefined) => (v === undefined ? null : cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
  });
  const x = (i: number) => padX + (i * (W - 2 * padX)) / (axes.length - 1);
  const y = (f: number) => H - pad - f * (H - 2 * pad);
  return (
    <svg class="parallel" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="parallel coordinates of the runs' params and metrics">
      {axes.map((a, i) => (
        <g key={a.k}>
          <line x1={x(i)} x2={x(i)} y1={pad} y2={H - pad} stroke="currentColor" opacity="0.4" />
          <text x={x(i)} y={pad - 10} text-anchor="middle" font-size="12" fill="currentColor">
            {a.k}
          </text>
        </g>
      ))}
      {runs.map((r, ri) => {
        const pts = axes.map((a, i) => {
          const f = scale[i](a.get(r));
          return f === null ? null : `${x(i)},${y(f)}`;
        });
        return <polyline key={r.info.run_id} points={pts.filter(Boolean).join(" ")} fill="none" stroke={color(ri)} stroke-width="1.5" opacity="0.8" />;
      })}
    </svg>
  );
}

function Scatter({
  runs,
  params,
  metrics,
  param,
  metric,
}: {
  runs: Run[];
  params: string[];
  metrics: string[];
  param: (r: Run, k: string) => string | undefined;
  metric: (r: Run, k: string) => number | undefined;
}) {
  const [px, setPx] = useState(params[0] ?? "");
  const [my, setMy] = useState(metrics[0] ?? "");
  if (!params.length || !metrics.length) return <p class="muted">Needs a param and a metric.</p>;
  const pts = runs
    .map((r, i) => ({ r, i, x: Number(param(r, px)), y: metric(r, my) }))
    .filter((p) => Number.isFinite(p.x) && p.y !== undefined && Number.isFinite(p.y)) as { r: Run; i: number; x: number; y: number }[];
  const W = 600;
  const H = 360;
  const pad = 50;
  const [xlo, xhi] = range(pts.map((p) => p.x));
  const [ylo, yhi] = range(pts.map((p) => p.y));
  const sx = (v: number) => pad + ((v - xlo) / (xhi - xlo || 1)) * (W - 2 * pad);
  const sy = (v: number) => H - pad - ((v - ylo) / (yhi - ylo || 1)) * (H - 2 * pad);
  return (
    <>
      <div class="toolbar">
        <label>
          x (param){" "}
          <select value={px} onChange={(e) => setPx((e.target as HTMLSelectElement).value)}>
            {params.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          y (metric){" "}
          <select value={my} onChange={(e) => setMy((e.target as HTMLSelectElement).value)}>
            {metrics.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
      </div>
      {!pts.length ? (
        <p class="muted">No run has a numeric {px} and a {my}.</p>
      ) : (
        <svg class="scatter" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${my} against ${px}`}>
          <line x1={pad} x2={W - pad} y1={H - pad} y2={H - pad} stroke="currentColor" opacity="0.4" />
          <line x1={pad} x2={pad} y1={pad} y2={H - pad} stroke="currentColor" opacity="0.4" />
          <text x={W / 2} y={H - 12} text-anchor="middle" font-size="12" fill="currentColor">
            {px} ({num(xlo)} – {num(xhi)})
          </text>
          <text x={14} y={H / 2} font-size="12" fill="currentColor" transform={`rotate(-90 14 ${H / 2})`} text-anchor="middle">
            {my} ({num(ylo)} – {num(yhi)})
          </text>
          {pts.map((p) => (
            <circle key={p.r.info.run_id} cx={sx(p.x)} cy={sy(p.y)} r="5" fill={color(p.i)}>
              <title>
                {name(p.r)}: {px}={num(p.x)}, {my}={num(p.y)}
              </title>
            </circle>
          ))}
        </svg>
      )}
    </>
  );
}

function range(v: number[]): [number, number] {
  if (!v.length) return [0, 1];
  return [v.reduce((a, b) => Math.min(a, b)), v.reduce((a, b) => Math.max(a, b))];
}
