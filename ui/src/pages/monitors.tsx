// Monitors: their runs with status, and a run's violations, per-feature drift (sortable),
// model quality over time, and the HTML report the run wrote.
import { useState } from "preact/hooks";
import { v1 } from "../api";
import { Chart } from "../chart";
import { link } from "../router";
import { ActionButton, Empty, KeyValues, Loaded, Section, Status, Time, num, useAsync, useCan } from "../ui";

export interface MonitorRun {
  id: string;
  monitor: string;
  status: string;
  trigger: string;
  window_start: number;
  window_end: number;
  started_time: number;
  ended_time?: number | null;
  error?: string | null;
  summary: Record<string, unknown> | null;
  report_url: string;
}
interface Monitor {
  name: string;
  spec: Record<string, unknown>;
  updated_time: number;
  last_run?: MonitorRun | null;
}

export function MonitorsPage() {
  const state = useAsync((signal) => v1.get<{ monitors: Monitor[] }>("monitors", undefined, signal), []);
  return (
    <>
      <h1>Monitors</h1>
      <Loaded state={state}>
        {(d) =>
          !d.monitors.length ? (
            <Empty>
              No monitors. Watch an endpoint's captured traffic with <code>sextant monitor apply monitor.yaml</code> (or <code>PUT /api/v1/monitors/NAME</code>).
            </Empty>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Last run</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {d.monitors.map((m) => (
                  <tr key={m.name}>
                    <td>
                      <a href={link("monitors", m.name)}>{m.name}</a>
                    </td>
                    <td>{typeof m.spec.endpoint === "string" ? <a href={link("endpoints", m.spec.endpoint)}>{m.spec.endpoint}</a> : "—"}</td>
                    <td>{m.last_run ? <a href={link("monitor-runs", m.last_run.id)}><Time ms={m.last_run.started_time} /></a> : "never"}</td>
                    <td>{m.last_run ? <Status value={m.last_run.status} /> : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
    </>
  );
}

export function MonitorPage({ name }: { name: string }) {
  const edit = useCan(`monitor:${name}`, "EDIT");
  const monitor = useAsync((signal) => v1.get<Monitor>(`monitors/${encodeURIComponent(name)}`, undefined, signal), [name]);
  const runs = useAsync((signal) => v1.get<{ runs: MonitorRun[] }>(`monitors/${encodeURIComponent(name)}/runs`, { max_results: 200 }, signal), [name]);
  return (
    <>
      <h1>
        <a href={link("monitors")}>Monitors</a> / {name}
      </h1>
      <div class="toolbar">
        {edit && <ActionButton label="Check now" kind="primary" run={() => v1.post<MonitorRun>(`monitors/${encodeURIComponent(name)}/runs`, {}).then(runs.reload)} />}
      </div>
      <Section title="Runs">
        <Loaded state={runs}>
          {(d) => (
            <>
              <QualityOverTime runs={d.runs} />
              {!d.runs.length ? (
                <p class="muted">No runs yet.</p>
              ) : (
                <table class="grid">
                  <thead>
                    <tr>
                      <th scope="col">Run</th>
                      <th scope="col">Status</th>
                      <th scope="col">Trigger</th>
                      <th scope="col">Window</th>
                      <th scope="col">Violations</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.runs.map((r) => (
                      <tr key={r.id}>
                        <td>
                          <a href={link("monitor-runs", r.id)}>
                            <Time ms={r.started_time} />
                          </a>
                        </td>
                        <td>
                          <Status value={r.status} />
                        </td>
                        <td>{r.trigger}</td>
                        <td>
                          <Time ms={r.window_start} /> – <Time ms={r.window_end} />
                        </td>
                        <td class="num">{violationCount(r)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          )}
        </Loaded>
      </Section>
      <Section title="Definition">
        <Loaded state={monitor}>{(m) => <pre class="code" tabIndex={0}>{JSON.stringify(m.spec, null, 2)}</pre>}</Loaded>
      </Section>
    </>
  );
}

/** Model Monitor's quality file as (metric, value) pairs: `metrics.<problem>.<name>.value`,
 * plus how many predictions were joined with ground truth. */
export function qualityValues(mq: unknown): [string, number][] {
  const out: [string, number][] = [];
  if (!mq || typeof mq !== "object") return out;
  const q = mq as { joined?: number; metrics?: Record<string, Record<string, { value?: number }>> };
  for (const group of Object.values(q.metrics ?? {})) {
    for (const [name, m] of Object.entries(group ?? {})) if (typeof m?.value === "number") out.push([name, m.value]);
  }
  if (typeof q.joined === "number") out.push(["predictions joined", q.joined]);
  return out;
}

function violationCount(r: MonitorRun): string {
  const v = r.summary?.violations;
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return String(v.length);
  return "—";
}

/** Model-quality metrics the runs' summaries carry, over the runs' window ends. */
function QualityOverTime({ runs }: { runs: MonitorRun[] }) {
  const byKey = new Map<string, { xs: number[]; ys: number[] }>();
  for (const r of [...runs].reverse()) {
    for (const [k, v] of qualityValues(r.summary?.model_quality)) {
      if (k === "predictions joined") continue;
      const s = byKey.get(k) ?? { xs: [], ys: [] };
      s.xs.push(r.window_end);
      s.ys.push(v);
      byKey.set(k, s);
    }
  }
  if (!byKey.size) return null;
  return (
    <div class="charts">
      {[...byKey.entries()].slice(0, 6).map(([k, s]) => (
        <Chart key={k} title={`model quality: ${k}`} series={[{ label: k, ...s }]} options={{ x: "time", log: false, smoothing: 0 }} height={200} />
      ))}
    </div>
  );
}

interface Summary {
  rows?: number;
  baseline?: string;
  violations?: Violation[];
  drift?: { drifted?: boolean; drifted_features?: string[]; features?: Row[] };
  model_quality?: Record<string, unknown> | null;
}

export function MonitorRunPage({ id }: { id: string }) {
  const state = useAsync((signal) => v1.get<MonitorRun>(`monitor-runs/${encodeURIComponent(id)}`, undefined, signal), [id]);
  return (
    <Loaded state={state}>
      {(r) => {
        const sum = (r.summary ?? {}) as Summary;
        const quality = qualityValues(sum.model_quality);
        return (
          <>
            <h1>
              <a href={link("monitors")}>Monitors</a> / <a href={link("monitors", r.monitor)}>{r.monitor}</a> / run <Time ms={r.started_time} />
            </h1>
            <div class="columns">
              <Section title="About">
                <KeyValues
                  rows={[
                    ["Status", <Status value={r.status} />],
                    ["Trigger", r.trigger],
                    ["Window", <><Time ms={r.window_start} /> – <Time ms={r.window_end} /></>],
                    ["Rows checked", num(sum.rows)],
                    ["Baseline", sum.baseline ?? "—"],
                    ["Violations", String(sum.violations?.length ?? 0)],
                    ["Drifted features", sum.drift?.drifted_features?.length ? sum.drift.drifted_features.join(", ") : "none"],
                    ["Error", r.error ?? "—"],
                  ]}
                />
              </Section>
              <Section title="Model quality">
                <KeyValues rows={quality.map(([k, v]) => [k, num(v)])} empty="Not checked by this run." />
              </Section>
            </div>
            <Section title="Violations">
              <Violations list={sum.violations ?? []} />
            </Section>
            <Section title="Drift per feature">
              <Drift rows={sum.drift?.features ?? []} />
            </Section>
            <Section title="Report">
              <iframe sandbox="" src={r.report_url} title={`report of monitor run ${r.id}`} class="report-frame" />
            </Section>
          </>
        );
      }}
    </Loaded>
  );
}

interface Violation {
  feature_name?: string;
  constraint_check_type?: string;
  description?: string;
}

function Violations({ list }: { list: Violation[] }) {
  if (!list.length) return <p>No violations.</p>;
  return (
    <table class="grid">
      <thead>
        <tr>
          <th scope="col">Feature</th>
          <th scope="col">Check</th>
          <th scope="col">Description</th>
        </tr>
      </thead>
      <tbody>
        {list.map((v, i) => (
          <tr key={i}>
            <td>{v.feature_name ?? "—"}</td>
            <td>{v.constraint_check_type ?? "—"}</td>
            <td>{v.description ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type Row = Record<string, unknown>;

function Drift({ rows }: { rows: Row[] }) {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => typeof r[k] !== "object" || r[k] === null)))];
  const [sort, setSort] = useState<{ col: string; desc: boolean }>({ col: cols.find((c) => /score|statistic|distance|psi/i.test(c)) ?? cols[0], desc: true });
  if (!rows.length) return <p class="muted">No per-feature drift in this run.</p>;
  const sorted = [...rows].sort((a, b) => {
    const x = a[sort.col];
    const y = b[sort.col];
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x ?? "").localeCompare(String(y ?? ""));
    return sort.desc ? -c : c;
  });
  return (
    <div class="scroll" tabIndex={0}>
      <table class="grid">
        <thead>
          <tr>
            {cols.map((c) => (
              <th scope="col" key={c} aria-sort={sort.col === c ? (sort.desc ? "descending" : "ascending") : "none"}>
                <button type="button" class="sort" onClick={() => setSort({ col: c, desc: sort.col === c ? !sort.desc : true })}>
                  {c} {sort.col === c ? (sort.desc ? "▼" : "▲") : ""}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {sorted.map((r, i) => (
            <tr key={i}>
              {cols.map((c) => (
                <td key={c} class={typeof r[c] === "number" ? "num" : undefined}>
                  {typeof r[c] === "number" ? num(r[c] as number) : String(r[c] ?? "—")}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
