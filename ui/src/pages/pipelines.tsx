// Pipelines: the stored pipelines with their schedules and triggers, their runs, and a run's
// page with its graph and live step status, attempts, metrics, outputs, logs and cache.
import { useEffect, useState } from "preact/hooks";
import { v1 } from "../api";
import { link } from "../router";
import { ActionButton, Empty, ErrorBox, KeyValues, Loaded, Section, Status, Time, duration, num, useAsync, useCan } from "../ui";

export interface Pipeline {
  name: string;
  spec: string;
  steps: string[];
  schedule: string | null;
  triggers: string[];
  created_time: number;
  updated_time: number;
}
export interface PipelineRun {
  id: string;
  pipeline: string;
  status: string;
  tracking_run_id?: string | null;
  trigger: string;
  trigger_event?: number | null;
  params: Record<string, unknown> | null;
  no_cache: boolean;
  created_time: number;
  updated_time: number;
}
interface CacheInfo {
  key: string;
  parts: Record<string, unknown>;
  hit: boolean;
  source?: Record<string, unknown>;
  reason?: string;
}
export interface Step {
  name: string;
  needs: string[];
  status: string;
  attempts: number;
  fencing: number;
  worker?: string | null;
  tracking_run_id?: string | null;
  error?: string | null;
  metrics: Record<string, number>;
  model_version?: number | null;
  note?: string | null;
  branch?: string | null;
  outputs?: Record<string, unknown>;
  cache?: CacheInfo | null;
}
interface RunDetail extends PipelineRun {
  steps: Step[];
}

const TERMINAL_STATUSES = new Set(["succeeded", "failed", "cancelled"]);
/** Whether a run (`SUCCEEDED`) or step (`succeeded`) status is final. */
const ended = (status: string) => TERMINAL_STATUSES.has(status.toLowerCase());

/** What starts a pipeline, as the server read it from the spec. */
function triggers(p: Pipeline): string {
  const out: string[] = [];
  if (p.schedule) out.push(`cron ${p.schedule}`);
  if (p.triggers.length) out.push(`on ${p.triggers.join(", ")}`);
  return out.join("; ") || "manual";
}

export function PipelinesPage() {
  const state = useAsync((signal) => v1.get<{ pipelines: Pipeline[] }>("pipelines", { max_results: 1000 }, signal), []);
  const runs = useAsync((signal) => v1.get<{ runs: PipelineRun[] }>("pipeline-runs", { max_results: 50 }, signal), []);
  return (
    <>
      <h1>Pipelines</h1>
      <Loaded state={state}>
        {(d) =>
          !d.pipelines.length ? (
            <Empty>
              No pipelines yet. Store one with <code>sextant pipeline apply pipeline.yaml</code> (or <code>PUT /api/v1/pipelines/NAME</code>); the quickstart stores one.
            </Empty>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Triggers</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {d.pipelines.map((p) => (
                  <tr key={p.name}>
                    <td>
                      <a href={link("pipelines", p.name)}>{p.name}</a>
                    </td>
                    <td>{triggers(p)}</td>
                    <td>
                      <Time ms={p.updated_time} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <Section title="Latest runs">
        <Loaded state={runs}>{(d) => <RunTable runs={d.runs} />}</Loaded>
      </Section>
    </>
  );
}

function RunTable({ runs }: { runs: PipelineRun[] }) {
  if (!runs.length) return <p class="muted">No runs.</p>;
  return (
    <table class="grid">
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Pipeline</th>
          <th scope="col">Status</th>
          <th scope="col">Trigger</th>
          <th scope="col">Started</th>
          <th scope="col">Duration</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.id}>
            <td>
              <a href={link("pipeline-runs", r.id)} class="mono">
                {r.id.slice(0, 12)}
              </a>
            </td>
            <td>{r.pipeline}</td>
            <td>
              <Status value={r.status} />
            </td>
            <td>
              {r.trigger}
              {r.trigger_event ? ` (event ${r.trigger_event})` : ""}
            </td>
            <td>
              <Time ms={r.created_time} />
            </td>
            <td>{ended(r.status) ? duration(r.created_time, r.updated_time) : "running"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function PipelinePage({ name }: { name: string }) {
  const edit = useCan(`pipeline:${name}`, "EDIT");
  const state = useAsync((signal) => v1.get<Pipeline>(`pipelines/${encodeURIComponent(name)}`, undefined, signal), [name]);
  const runs = useAsync((signal) => v1.get<{ runs: PipelineRun[] }>("pipeline-runs", { pipeline: name, max_results: 100 }, signal), [name]);
  return (
    <>
      <h1>
        <a href={link("pipelines")}>Pipelines</a> / {name}
      </h1>
      <div class="toolbar">
        {edit && <ActionButton
          label="Run now"
          kind="primary"
          run={() => v1.post<PipelineRun>(`pipelines/${encodeURIComponent(name)}/runs`, {}).then((r) => (window.location.hash = link("pipeline-runs", r.id)))}
        />}
      </div>
      <Section title="Runs">
        <Loaded state={runs}>{(d) => <RunTable runs={d.runs} />}</Loaded>
      </Section>
      <Section title="Definition">
        <Loaded state={state}>
          {(p) => (
            <>
              <p>
                Triggers: {triggers(p)}. Updated <Time ms={p.updated_time} />.
              </p>
              <pre class="code" tabIndex={0}>{p.spec}</pre>
            </>
          )}
        </Loaded>
      </Section>
    </>
  );
}

/** Polls the run every second until it ends, so step status is live. */
function useLiveRun(id: string) {
  const [run, setRun] = useState<RunDetail>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    const load = async () => {
      try {
        const r = await v1.get<RunDetail>(`pipeline-runs/${encodeURIComponent(id)}`);
        if (stop) return;
        setRun(r);
        setError(undefined);
        if (!ended(r.status)) timer = window.setTimeout(load, 1000);
      } catch (e) {
        if (!stop) setError(e);
      }
    };
    load();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [id, tick]);
  return { run, error, reload: () => setTick((t) => t + 1) };
}

export function PipelineRunPage({ id }: { id: string }) {
  const { run, error, reload } = useLiveRun(id);
  const [chosen, setChosen] = useState<string>();
  const edit = useCan(run ? `pipeline:${run.pipeline}` : null, "EDIT");
  if (error) return <ErrorBox error={error} />;
  if (!run) return <p class="muted">Loading…</p>;
  const step = run.steps.find((s) => s.name === chosen) ?? run.steps.find((s) => s.status === "running" || s.status === "failed") ?? run.steps[0];
  return (
    <>
      <h1>
        <a href={link("pipelines")}>Pipelines</a> / <a href={link("pipelines", run.pipeline)}>{run.pipeline}</a> / run <span class="mono">{run.id.slice(0, 12)}</span>
      </h1>
      <div class="toolbar">
        <Status value={run.status} />
        {edit && !ended(run.status) && <ActionButton label="Cancel" kind="danger" confirm="Cancel this run?" run={() => v1.post(`pipeline-runs/${encodeURIComponent(run.id)}/cancel`).then(reload)} />}
        {edit && ["failed", "cancelled"].includes(run.status.toLowerCase()) && (
          <ActionButton label="Retry" kind="primary" run={() => v1.post(`pipeline-runs/${encodeURIComponent(run.id)}/retry`).then(reload)} />
        )}
      </div>
      <Section title="Graph">
        <Dag steps={run.steps} chosen={step?.name} onChoose={setChosen} />
      </Section>
      <div class="columns">
        <Section title="About">
          <KeyValues
            rows={[
              ["Run ID", <span class="mono">{run.id}</span>],
              ["Trigger", run.trigger],
              ["Triggering event", run.trigger_event ? <a href={link("events", { after: String(run.trigger_event - 1) })}>event {run.trigger_event}</a> : "—"],
              ["Tracking run", run.tracking_run_id ? <a href={link("runs", run.tracking_run_id)}>{run.tracking_run_id}</a> : "—"],
              ["Started", <Time ms={run.created_time} />],
              ["Updated", <Time ms={run.updated_time} />],
              ["Params", <span class="mono">{JSON.stringify(run.params ?? {})}</span>],
              ["Cache", run.no_cache ? "off for this run" : "on"],
            ]}
          />
        </Section>
      </div>
      {step && <StepPanel runId={run.id} step={step} live={!ended(run.status)} />}
    </>
  );
}

/** Layers by longest path from the roots; one column per layer, edges as curves. */
export function layers(steps: Step[]): Map<string, number> {
  const depth = new Map<string, number>();
  const byName = new Map(steps.map((s) => [s.name, s]));
  const visit = (name: string, seen: Set<string>): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (seen.has(name)) return 0;
    seen.add(name);
    const d = Math.max(-1, ...(byName.get(name)?.needs ?? []).map((n) => visit(n, seen))) + 1;
    depth.set(name, d);
    return d;
  };
  for (const s of steps) visit(s.name, new Set());
  return depth;
}

function Dag({ steps, chosen, onChoose }: { steps: Step[]; chosen?: string; onChoose: (s: string) => void }) {
  const depth = layers(steps);
  const cols = new Map<number, Step[]>();
  for (const s of steps) cols.set(depth.get(s.name)!, [...(cols.get(depth.get(s.name)!) ?? []), s]);
  const W = 150;
  const H = 44;
  const gx = 50;
  const gy = 18;
  const pos = new Map<string, { x: number; y: number }>();
  for (const [d, list] of cols) list.forEach((s, i) => pos.set(s.name, { x: 10 + d * (W + gx), y: 10 + i * (H + gy) }));
  const width = 20 + cols.size * (W + gx);
  const height = 20 + Math.max(...[...cols.values()].map((l) => l.length)) * (H + gy);
  return (
    <svg class="dag" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="group" aria-label="pipeline graph">
      {steps.flatMap((s) =>
        s.needs.map((n) => {
          const a = pos.get(n)!;
          const b = pos.get(s.name)!;
          if (!a || !b) return null;
          const x1 = a.x + W;
          const y1 = a.y + H / 2;
          const x2 = b.x;
          const y2 = b.y + H / 2;
          return <path key={`${n}->${s.name}`} d={`M${x1},${y1} C${x1 + gx / 2},${y1} ${x2 - gx / 2},${y2} ${x2},${y2}`} fill="none" stroke="currentColor" opacity="0.5" />;
        }),
      )}
      {steps.map((s) => {
        const p = pos.get(s.name)!;
        return (
          <g
            key={s.name}
            class={`node status-${s.status}`}
            transform={`translate(${p.x},${p.y})`}
            role="button"
            tabIndex={0}
            aria-label={`step ${s.name}: ${s.status}${s.cache?.hit ? ", from cache" : ""}`}
            aria-pressed={chosen === s.name}
            onClick={() => onChoose(s.name)}
            onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), onChoose(s.name))}
            style={{ cursor: "pointer" }}
          >
            <rect width={W} height={H} rx="6" fill="var(--panel)" stroke="currentColor" stroke-width={chosen === s.name ? 3 : 1} />
            <text x="8" y="18" font-size="13" fill="var(--fg)">
              {s.name}
            </text>
            <text x="8" y="35" font-size="11" fill="currentColor">
              {s.status}
              {s.cache?.hit ? " · cached" : ""}
              {s.attempts > 1 ? ` · ${s.attempts} attempts` : ""}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function StepPanel({ runId, step, live }: { runId: string; step: Step; live: boolean }) {
  const [explain, setExplain] = useState<unknown>();
  const inputs = (step.cache?.parts as { inputs?: unknown } | undefined)?.inputs;
  return (
    <Section title={`Step ${step.name}`}>
      <div class="columns">
        <KeyValues
          rows={[
            ["Status", <Status value={step.status} />],
            ["Waits for", step.needs.length ? step.needs.join(", ") : "—"],
            ["Attempts", String(step.attempts)],
            ["Worker", step.worker ?? "—"],
            ["Fencing token", String(step.fencing)],
            ["Tracking run", step.tracking_run_id ? <a href={link("runs", step.tracking_run_id)}>{step.tracking_run_id}</a> : "—"],
            ["Cache", step.cache ? (step.cache.hit ? "hit (reused an earlier result)" : `miss${step.cache.reason ? `: ${step.cache.reason}` : ""}`) : "—"],
            ["Model version", step.model_version ? String(step.model_version) : "—"],
            ["Note", step.note ?? "—"],
            ["Branch", step.branch ?? "—"],
            ["Error", step.error ? <span class="error">{step.error}</span> : "—"],
          ]}
        />
        <div>
          <h3>Metrics</h3>
          <KeyValues rows={Object.entries(step.metrics).map(([k, v]) => [k, num(v)])} />
          <h3>Resolved inputs</h3>
          {inputs ? <pre class="code" tabIndex={0}>{JSON.stringify(inputs, null, 2)}</pre> : <p class="muted">None recorded.</p>}
          <h3>Outputs</h3>
          {step.outputs && Object.keys(step.outputs).length ? <pre class="code" tabIndex={0}>{JSON.stringify(step.outputs, null, 2)}</pre> : <p class="muted">None.</p>}
        </div>
      </div>
      <div class="toolbar">
        <ActionButton label="Explain cache" run={() => v1.get(`pipeline-runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step.name)}/cache`).then(setExplain)} />
      </div>
      {explain !== undefined && <pre class="code" tabIndex={0}>{JSON.stringify(explain, null, 2)}</pre>}
      <Logs runId={runId} step={step.name} live={live} />
    </Section>
  );
}

interface LogChunk {
  data: string;
  next_offset: number;
  complete: boolean;
  finished: boolean;
}

/** Follows a step's stdout from where the last read stopped, until the step finished. */
function Logs({ runId, step, live }: { runId: string; step: string; live: boolean }) {
  const [stream, setStream] = useState<"stdout" | "stderr">("stdout");
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let stop = false;
    let offset = 0;
    let timer: number | undefined;
    setText("");
    setError(undefined);
    const read = async () => {
      try {
        const c = await v1.get<LogChunk>(`pipeline-runs/${encodeURIComponent(runId)}/logs`, { step, stream, offset });
        if (stop) return;
        offset = c.next_offset;
        if (c.data) setText((t) => t + c.data);
        if (!c.complete) timer = window.setTimeout(read, c.data ? 0 : 1000);
      } catch (e) {
        if (!stop) setError(e);
      }
    };
    read();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [runId, step, stream, live]);
  return (
    <>
      <div class="toolbar">
        <h3>Logs</h3>
        <label>
          stream{" "}
          <select value={stream} onChange={(e) => setStream((e.target as HTMLSelectElement).value as "stdout" | "stderr")}>
            <option>stdout</option>
            <option>stderr</option>
          </select>
        </label>
      </div>
      {error ? <ErrorBox error={error} /> : <pre class="code logs" tabIndex={0}>{text || "(empty)"}</pre>}
    </>
  );
}
