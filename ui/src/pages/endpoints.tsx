// Serving endpoints: status list, and an endpoint's variants, split, rollout with its bake
// countdown, split history, live per-variant traffic, promote and roll back.
import { useEffect, useState } from "preact/hooks";
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

/** One variant's traffic between two of the server's samples (`GET /api/v1/endpoints/{name}/traffic`). */
interface TrafficPoint {
  end_ms: number;
  requests: number;
  requests_per_s: number;
  error_rate: number | null;
  p99_ms: number | null;
}
interface EndpointTraffic {
  sample_every_ms: number;
  since: number | null;
  variants: { variant: string; shadow: boolean; points: TrafficPoint[] }[];
}

/** The endpoint and its traffic over the last hour, both read again every 2 s. */
function useEndpoint(name: string) {
  const [endpoint, setEndpoint] = useState<Endpoint>();
  const [traffic, setTraffic] = useState<EndpointTraffic>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    const load = async () => {
      try {
        const path = `endpoints/${encodeURIComponent(name)}`;
        const [e, t] = await Promise.all([v1.get<Endpoint>(path), v1.get<EndpointTraffic>(`${path}/traffic`)]);
        if (stop) return;
        setEndpoint(e);
        setTraffic(t);
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
  return { endpoint, error, traffic, reload: () => setTick((t) => t + 1) };
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
  const { endpoint: e, error, traffic, reload } = useEndpoint(name);
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
      <Section title="Traffic per variant (last hour)">
        <Traffic traffic={traffic} stats={e.stats} />
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

function Traffic({ traffic, stats }: { traffic?: EndpointTraffic; stats: Stats[] }) {
  const series = (f: (p: TrafficPoint) => number | null) =>
    (traffic?.variants ?? []).map(({ variant, points }) => {
      const xs: number[] = [];
      const ys: number[] = [];
      for (const p of points) {
        const y = f(p);
        if (y === null) continue;
        xs.push(p.end_ms);
        ys.push(y);
      }
      return { label: variant, xs, ys };
    });
  const rate = series((p) => p.requests_per_s);
  const errors = series((p) => p.error_rate);
  const p99 = series((p) => p.p99_ms);
  const every = (traffic?.sample_every_ms ?? 10000) / 1000;
  return (
    <>
      <p class="muted">Every gateway's counters, sampled by the server every {every} s and kept for an hour.</p>
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
        <p class="muted">Charts appear after two samples.</p>
      )}
    </>
  );
}
