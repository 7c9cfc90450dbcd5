// Serving endpoints: status list, and an endpoint's variants, split, rollout with its bake
// countdown, split history, live per-variant traffic, promote and roll back.
import { useEffect, useRef, useState } from "preact/hooks";
import { v1 } from "../api";
import { Chart } from "../chart";
import { link } from "../router";
import { ActionButton, Empty, ErrorBox, KeyValues, Loaded, Section, Status, Time, num, useAsync, useCan } from "../ui";

interface Variant {
  name: string;
  model: string;
  weight?: number;
  runtime?: string;
  max_concurrency?: number;
}
interface Stats {
  variant: string;
  shadow: boolean;
  requests: number;
  errors: number;
  client_errors: number;
  rejected: number;
  in_flight: number;
  p50_ms?: number | null;
  p99_ms?: number | null;
}
interface TrafficEntry {
  time: number;
  reason?: string;
  split: Record<string, number>;
}
interface Deployed {
  uri: string;
  resolved: string;
  model?: string;
  version?: number;
}
interface Rollout {
  id: string;
  variant: string;
  from: Deployed;
  to: Deployed;
  policy: { strategy: string; percent?: number; bake?: string; interval?: string };
  status: string;
  traffic_percent: number;
  started_ms: number;
  ended_ms?: number;
  reason?: string;
  time_left_ms?: number;
}
export interface Endpoint {
  name: string;
  status: string;
  spec: { variants: Variant[]; shadow?: { model: string; [k: string]: unknown } | null; capture?: { sampling_percent: number; mode: string } | null; rollout?: Record<string, unknown> };
  deployed?: unknown;
  shadow?: unknown;
  rollout?: Rollout | null;
  past_rollouts?: Rollout[];
  traffic: TrafficEntry[];
  message?: string | null;
  stats: Stats[];
  url: string;
  warnings?: string[];
  created_time: number;
  updated_time: number;
}

export function EndpointsPage() {
  const state = useAsync((signal) => v1.get<{ endpoints: Endpoint[] }>("endpoints", undefined, signal), []);
  return (
    <>
      <h1>Endpoints</h1>
      <Loaded state={state}>
        {(d) =>
          !d.endpoints.length ? (
            <Empty>
              No endpoints. Serve a registered model with <code>sextant endpoint apply endpoint.yaml</code> (or <code>PUT /api/v1/endpoints/NAME</code>).
            </Empty>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Variants</th>
                  <th scope="col" class="num">
                    Requests
                  </th>
                  <th scope="col" class="num">
                    Errors
                  </th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {d.endpoints.map((e) => (
                  <tr key={e.name}>
                    <td>
                      <a href={link("endpoints", e.name)}>{e.name}</a>
                    </td>
                    <td>
                      <Status value={e.status} />
                    </td>
                    <td>{e.spec.variants.map((v) => `${v.name}: ${v.model}`).join(", ")}</td>
                    <td class="num">{e.stats.reduce((a, s) => a + s.requests, 0)}</td>
                    <td class="num">{e.stats.reduce((a, s) => a + s.errors, 0)}</td>
                    <td>
                      <Time ms={e.updated_time} />
                    </td>
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

/** Samples of one variant's counters, to draw rates since the page opened. */
interface Sample {
  t: number;
  requests: number;
  errors: number;
  p99?: number | null;
}

function useEndpoint(name: string) {
  const [endpoint, setEndpoint] = useState<Endpoint>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  const samples = useRef(new Map<string, Sample[]>());
  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    const load = async () => {
      try {
        const e = await v1.get<Endpoint>(`endpoints/${encodeURIComponent(name)}`);
        if (stop) return;
        const now = Date.now();
        for (const s of e.stats) {
          const list = samples.current.get(s.variant) ?? [];
          list.push({ t: now, requests: s.requests, errors: s.errors, p99: s.p99_ms });
          samples.current.set(s.variant, list.slice(-600));
        }
        setEndpoint(e);
        setError(undefined);
      } catch (err) {
        if (!stop) setError(err);
      }
      if (!stop) timer = window.setTimeout(load, 2000);
    };
    load();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [name, tick]);
  return { endpoint, error, samples: samples.current, reload: () => setTick((t) => t + 1) };
}

function Countdown({ ms }: { ms: number }) {
  const [start] = useState(Date.now());
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(t);
  }, []);
  const left = Math.max(0, ms - (now - start));
  return <span class="countdown">{(left / 1000).toFixed(0)} s</span>;
}

export function EndpointPage({ name }: { name: string }) {
  const { endpoint: e, error, samples, reload } = useEndpoint(name);
  const manage = useCan(`endpoint:${name}`, "MANAGE");
  if (error && !e) return <ErrorBox error={error} />;
  if (!e) return <p class="muted">Loading…</p>;
  const rollout = e.rollout;
  return (
    <>
      <h1>
        <a href={link("endpoints")}>Endpoints</a> / {e.name}
      </h1>
      <div class="toolbar">
        <Status value={e.status} />
        {e.message && <span>{e.message}</span>}
        {rollout && manage && <ActionButton label="Promote" kind="primary" confirm="Send all traffic to the new model now?" run={() => v1.post(`endpoints/${encodeURIComponent(name)}/promote`).then(reload)} />}
        {rollout && manage && <ActionButton label="Roll back" kind="danger" confirm="Roll back to the model that served before?" run={() => v1.post(`endpoints/${encodeURIComponent(name)}/rollback`).then(reload)} />}
      </div>
      {e.warnings?.map((w) => (
        <p class="error" key={w}>
          {w}
        </p>
      ))}
      <div class="columns">
        <Section title="Variants">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Variant</th>
                <th scope="col">Model</th>
                <th scope="col" class="num">
                  Weight
                </th>
                <th scope="col">Runtime</th>
              </tr>
            </thead>
            <tbody>
              {e.spec.variants.map((v) => (
                <tr key={v.name}>
                  <td>{v.name}</td>
                  <td>
                    <ModelLink model={v.model} />
                  </td>
                  <td class="num">{num(v.weight)}</td>
                  <td>{v.runtime ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <KeyValues
            rows={[
              ["Invocations", <span class="mono">{e.url}</span>],
              ["Shadow", e.spec.shadow ? <ModelLink model={e.spec.shadow.model} /> : "—"],
              ["Capture", e.spec.capture ? `${e.spec.capture.sampling_percent}% (${e.spec.capture.mode})` : "off"],
              ["Updated", <Time ms={e.updated_time} />],
            ]}
          />
        </Section>
        <Section title="Rollout">
          {rollout ? (
            <KeyValues
              rows={[
                ["Status", <Status value={rollout.status} />],
                ["Strategy", `${rollout.policy.strategy}${rollout.policy.percent ? ` ${rollout.policy.percent}%` : ""}${rollout.policy.bake ? `, bake ${rollout.policy.bake}` : ""}`],
                ["From", <ModelLink model={rollout.from.resolved} />],
                ["To", <ModelLink model={rollout.to.resolved} />],
                ["New model's traffic", `${num(rollout.traffic_percent)}%`],
                ["Started", <Time ms={rollout.started_ms} />],
                ["Moves on in", typeof rollout.time_left_ms === "number" ? <Countdown key={rollout.time_left_ms} ms={rollout.time_left_ms} /> : "—"],
              ]}
            />
          ) : (
            <p class="muted">No rollout in progress.</p>
          )}
        </Section>
      </div>
      <Section title="Traffic per variant (since this page opened)">
        <Traffic samples={samples} stats={e.stats} />
      </Section>
      <Section title={`Split history (${e.traffic.length})`}>
        <SplitHistory traffic={e.traffic} />
      </Section>
      {!!e.past_rollouts?.length && (
        <Section title={`Past rollouts (${e.past_rollouts.length})`}>
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">From</th>
                <th scope="col">To</th>
                <th scope="col">Strategy</th>
                <th scope="col">Outcome</th>
                <th scope="col">Why</th>
              </tr>
            </thead>
            <tbody>
              {[...e.past_rollouts].reverse().map((r) => (
                <tr key={r.id}>
                  <td>
                    <Time ms={r.started_ms} />
                  </td>
                  <td>
                    <ModelLink model={r.from.resolved} />
                  </td>
                  <td>
                    <ModelLink model={r.to.resolved} />
                  </td>
                  <td>{r.policy.strategy}</td>
                  <td>
                    <Status value={r.status} />
                  </td>
                  <td>{r.reason ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
    </>
  );
}

/** `models:/name/3` → a link to the version page. */
export function ModelLink({ model }: { model: string }) {
  const m = model.match(/^models:\/([^/@]+)\/(\d+)$/);
  if (!m) return <span class="mono">{model}</span>;
  return <a href={link("models", m[1], "versions", m[2])}>{model}</a>;
}

function SplitHistory({ traffic }: { traffic: TrafficEntry[] }) {
  if (!traffic.length) return <p class="muted">No changes yet.</p>;
  return (
    <div class="scroll" tabIndex={0}>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Split</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {[...traffic].reverse().map((t, i) => (
            <tr key={i}>
              <td>
                <Time ms={t.time} />
              </td>
              <td>
                {Object.entries(t.split).map(([variant, pct]) => (
                  <span class="chip" key={variant}>
                    {variant} {num(pct)}%
                  </span>
                ))}
              </td>
              <td>{t.reason ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Traffic({ samples, stats }: { samples: Map<string, Sample[]>; stats: Stats[] }) {
  const series = (f: (a: Sample, b: Sample) => number | null) =>
    [...samples.entries()].map(([variant, list]) => {
      const xs: number[] = [];
      const ys: number[] = [];
      for (let i = 1; i < list.length; i++) {
        const y = f(list[i - 1], list[i]);
        if (y === null) continue;
        xs.push(list[i].t);
        ys.push(y);
      }
      return { label: variant, xs, ys };
    });
  const rate = series((a, b) => ((b.requests - a.requests) * 1000) / Math.max(1, b.t - a.t));
  const errors = series((a, b) => (b.requests > a.requests ? (b.errors - a.errors) / (b.requests - a.requests) : 0));
  const p99 = series((_, b) => (b.p99 === undefined || b.p99 === null ? null : b.p99));
  return (
    <>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col" class="num">
              Requests
            </th>
            <th scope="col" class="num">
              Errors (5xx)
            </th>
            <th scope="col" class="num">
              Client errors
            </th>
            <th scope="col" class="num">
              In flight
            </th>
            <th scope="col" class="num">
              p50 ms
            </th>
            <th scope="col" class="num">
              p99 ms
            </th>
          </tr>
        </thead>
        <tbody>
          {stats.map((s) => (
            <tr key={s.variant}>
              <td>
                {s.variant}
                {s.shadow ? " (shadow)" : ""}
              </td>
              <td class="num">{s.requests}</td>
              <td class="num">{s.errors}</td>
              <td class="num">{s.client_errors}</td>
              <td class="num">{s.in_flight}</td>
              <td class="num">{num(s.p50_ms)}</td>
              <td class="num">{num(s.p99_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rate.some((s) => s.xs.length > 1) ? (
        <div class="charts">
          <Chart title="requests / s" series={rate} options={{ x: "time", log: false, smoothing: 0 }} height={200} />
          <Chart title="error rate" series={errors} options={{ x: "time", log: false, smoothing: 0 }} height={200} />
          <Chart title="p99 latency (ms)" series={p99} options={{ x: "time", log: false, smoothing: 0 }} height={200} />
        </div>
      ) : (
        <p class="muted">Charts appear after a few seconds of sampling.</p>
      )}
    </>
  );
}
