// One run: its facts, params, metrics, tags, inputs, parent and children, the pipeline step
// that made it, metric charts and its artifacts.
import { useState } from "preact/hooks";
import { mlflow, tag, v1, type Metric, type Run } from "../api";
import { Chart, ChartControls, type ChartOptions } from "../chart";
import { link } from "../router";
import { KeyValues, Loaded, Section, Status, Time, duration, num, useAsync } from "../ui";
import { Artifacts } from "./artifacts";
import type { MetricSummary } from "./runs";

/** A run by its id alone: `#/experiments/<id>/runs/<id>` (MLflow's links) and `#/runs/<id>`. */
export function RunPage({ runId }: { runId: string }) {
  const state = useAsync((signal) => mlflow.get<{ run: Run }>("runs/get", { run_id: runId }, signal), [runId]);
  return <Loaded state={state}>{(d) => <RunBody run={d.run} />}</Loaded>;
}

function RunBody({ run }: { run: Run }) {
  const info = run.info;
  const tags = run.data.tags ?? [];
  const parent = tag(tags, "mlflow.parentRunId");
  const pipelineRun = tag(tags, "sextant.pipelineRun");
  const step = tag(tags, "sextant.step");
  const userTags = tags.filter((t) => !t.key.startsWith("mlflow.") && !t.key.startsWith("sextant."));
  const experiment = useAsync(
    (signal) => mlflow.get<{ experiment: { name: string } }>("experiments/get", { experiment_id: info.experiment_id }, signal),
    [info.experiment_id],
  );
  const children = useAsync(
    (signal) =>
      mlflow.post<{ runs?: Run[] }>(
        "runs/search",
        { experiment_ids: [info.experiment_id], filter: `tags.mlflow.parentRunId = '${info.run_id}'`, max_results: 100 },
        signal,
      ),
    [info.run_id],
  );
  return (
    <>
      <h1>
        <a href={link("experiments", info.experiment_id)}>{experiment.data?.experiment.name ?? `Experiment ${info.experiment_id}`}</a> / {info.run_name || info.run_id}
      </h1>
      <div class="columns">
        <Section title="About">
          <KeyValues
            rows={[
              ["Run ID", <span class="mono">{info.run_id}</span>],
              ["Status", <Status value={info.status} />],
              ["Started", <Time ms={info.start_time} />],
              ["Duration", duration(info.start_time, info.end_time)],
              ["User", info.user_id || "—"],
              ["Source", tag(tags, "mlflow.source.name") ?? "—"],
              ["Git commit", <span class="mono">{tag(tags, "mlflow.source.git.commit") ?? "—"}</span>],
              ["Artifact URI", <span class="mono">{info.artifact_uri ?? "—"}</span>],
              ["Parent run", parent ? <a href={link("experiments", info.experiment_id, "runs", parent)}>{parent}</a> : "—"],
              [
                "Pipeline step",
                pipelineRun ? (
                  <a href={link("pipeline-runs", pipelineRun)}>
                    {pipelineRun}
                    {step ? ` / ${step}` : ""}
                  </a>
                ) : (
                  "—"
                ),
              ],
            ]}
          />
        </Section>
        <Section title="Child runs">
          <Loaded state={children}>
            {(d) =>
              d.runs?.length ? (
                <ul>
                  {d.runs.map((c) => (
                    <li key={c.info.run_id}>
                      <a href={link("experiments", c.info.experiment_id, "runs", c.info.run_id)}>{c.info.run_name || c.info.run_id}</a>
                    </li>
                  ))}
                </ul>
              ) : (
                <p class="muted">None.</p>
              )
            }
          </Loaded>
        </Section>
      </div>
      <div class="columns">
        <Section title={`Parameters (${run.data.params?.length ?? 0})`}>
          <KeyValues rows={(run.data.params ?? []).map((p) => [p.key, <span class="mono">{p.value}</span>])} />
        </Section>
        <Section title={`Tags (${userTags.length})`}>
          <KeyValues rows={userTags.map((t) => [t.key, t.value])} />
        </Section>
      </div>
      <Metrics run={run} />
      {!!run.inputs?.dataset_inputs?.length && (
        <Section title="Dataset inputs">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Digest</th>
                <th scope="col">Source</th>
                <th scope="col">Context</th>
              </tr>
            </thead>
            <tbody>
              {run.inputs.dataset_inputs.map((d) => (
                <tr key={d.dataset.digest + d.dataset.name}>
                  <td>{d.dataset.name}</td>
                  <td class="mono">{d.dataset.digest}</td>
                  <td class="mono">{d.dataset.source ?? "—"}</td>
                  <td>{tag(d.tags, "mlflow.data.context") ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      <Section title="Artifacts">
        <Artifacts runId={info.run_id} />
      </Section>
    </>
  );
}

interface History {
  metrics?: Metric[];
  next_page_token?: string;
}

/** A metric's whole history, page by page (MLflow pages get-history by 25,000 points). */
export async function history(runId: string, key: string, signal: AbortSignal): Promise<Metric[]> {
  const out: Metric[] = [];
  let token: string | undefined;
  do {
    const page = await mlflow.get<History>("metrics/get-history", { run_id: runId, metric_key: key, max_results: 25000, page_token: token }, signal);
    out.push(...(page.metrics ?? []));
    token = page.next_page_token || undefined;
  } while (token);
  return out.sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
}

/** Rows of the metrics table drawn at once; a run with 12,000 keys is searched, not listed. */
const SHOWN_METRICS = 200;

function Metrics({ run }: { run: Run }) {
  const metrics = [...(run.data.metrics ?? [])].sort((a, b) => a.key.localeCompare(b.key));
  const [find, setFind] = useState("");
  const needle = find.toLowerCase();
  const matching = needle ? metrics.filter((m) => m.key.toLowerCase().includes(needle)) : metrics;
  const [options, setOptions] = useState<ChartOptions>({ x: "step", log: false, smoothing: 0 });
  const [charted, setCharted] = useState<string[]>(() => metrics.slice(0, 6).map((m) => m.key));
  // Last, min and max of every key from the server, whether charted or not.
  const summaries = useAsync(
    async (signal) => {
      const page = await v1.get<{ summaries: MetricSummary[] }>("runs/metric-summaries", { run_id: run.info.run_id }, signal);
      return new Map(page.summaries.map((m) => [m.key, m]));
    },
    [run.info.run_id],
  );
  const histories = useAsync(
    async (signal) => {
      const all = await Promise.all(charted.map((k) => history(run.info.run_id, k, signal)));
      return new Map(charted.map((k, i) => [k, all[i]]));
    },
    [run.info.run_id, charted.join("\u0000")],
  );
  return (
    <Section title={`Metrics (${metrics.length})`}>
      {metrics.length > SHOWN_METRICS && (
        <div class="toolbar">
          <label>
            Find a metric <input type="search" value={find} onInput={(e) => setFind((e.target as HTMLInputElement).value)} />
          </label>
          <span class="muted" role="status">
            {matching.length > SHOWN_METRICS ? `first ${SHOWN_METRICS} of ${matching.length} shown` : `${matching.length} shown`}
          </span>
        </div>
      )}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Chart</th>
            <th scope="col">Key</th>
            <th scope="col" class="num">
              Last
            </th>
            <th scope="col" class="num">
              Min
            </th>
            <th scope="col" class="num">
              Max
            </th>
            <th scope="col" class="num">
              Step
            </th>
          </tr>
        </thead>
        <tbody>
          {matching.slice(0, SHOWN_METRICS).map((m) => {
            const range = summaries.data?.get(m.key);
            return (
              <tr key={m.key}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`chart ${m.key}`}
                    checked={charted.includes(m.key)}
                    onChange={() => setCharted(charted.includes(m.key) ? charted.filter((k) => k !== m.key) : [...charted, m.key])}
                  />
                </td>
                <td>{m.key}</td>
                <td class="num">{num(m.value)}</td>
                <td class="num">{num(range?.min)}</td>
                <td class="num">{num(range?.max)}</td>
                <td class="num">{m.step}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {charted.length > 0 && <ChartControls options={options} onChange={setOptions} />}
      <Loaded state={histories}>
        {(h) => (
          <div class="charts">
            {charted.map((k) => {
              const pts = h.get(k) ?? [];
              return (
                <Chart
                  key={k}
                  title={k}
                  options={options}
                  series={[{ label: k, xs: pts.map((p) => (options.x === "time" ? p.timestamp : p.step)), ys: pts.map((p) => p.value) }]}
                />
              );
            })}
          </div>
        )}
      </Loaded>
    </Section>
  );
}
