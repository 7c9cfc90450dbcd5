// A model version's lineage in one call: the run that produced it, the pipeline run and step
// behind that run, the event that started the pipeline, the monitor run behind that event,
// and the endpoints serving the version now.
import { v1 } from "../api";
import { link } from "../router";
import { Loaded, Status, Time, useAsync } from "../ui";

interface Lineage {
  run?: { run_id: string; experiment_id: string; run_name?: string | null } | null;
  pipeline_run?: { id: string; pipeline: string; status: string; trigger: string } | null;
  step?: string | null;
  event?: { id: number; kind: string; subject: string; time: number } | null;
  monitor_run?: { id: string; monitor: string; status: string; started_time: number } | null;
  endpoints: { name: string; status: string; variants: string[] }[];
  /** Links emptied because the caller may not read what they lead to. */
  withheld?: string[];
}

const HIDDEN = <span class="muted">recorded, but not visible to you</span>;

export function Lineage({ name, version }: { name: string; version: string }) {
  const state = useAsync(
    (signal) => v1.get<Lineage>(`models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/lineage`, undefined, signal),
    [name, version],
  );
  return (
    <Loaded state={state}>
      {(l) => (
        <ol class="lineage">
          <li>
            Run:{" "}
            {l.run ? (
              <a href={link("experiments", l.run.experiment_id, "runs", l.run.run_id)}>{l.run.run_name || l.run.run_id}</a>
            ) : l.withheld?.includes("run") ? (
              HIDDEN
            ) : (
              <span class="muted">none recorded</span>
            )}
          </li>
          <li>
            Pipeline run:{" "}
            {l.pipeline_run ? (
              <>
                <a href={link("pipeline-runs", l.pipeline_run.id)}>
                  {l.pipeline_run.pipeline} / {l.pipeline_run.id.slice(0, 12)}
                </a>
                {l.step ? `, step ${l.step}` : ""} <Status value={l.pipeline_run.status} /> (trigger: {l.pipeline_run.trigger})
              </>
            ) : l.withheld?.includes("pipeline_run") ? (
              HIDDEN
            ) : (
              <span class="muted">not made by a pipeline</span>
            )}
          </li>
          <li>
            Triggering event:{" "}
            {l.event ? (
              <a href={link("events", { subject: l.event.subject })}>
                #{l.event.id} {l.event.kind} on {l.event.subject}
              </a>
            ) : l.withheld?.includes("event") ? (
              HIDDEN
            ) : (
              <span class="muted">none (started by hand or on a schedule)</span>
            )}
          </li>
          <li>
            Monitor run:{" "}
            {l.monitor_run ? (
              <a href={link("monitor-runs", l.monitor_run.id)}>
                {l.monitor_run.monitor}, <Time ms={l.monitor_run.started_time} />
              </a>
            ) : l.withheld?.includes("monitor_run") ? (
              HIDDEN
            ) : (
              <span class="muted">none</span>
            )}
            {l.monitor_run && (
              <>
                {" "}
                <Status value={l.monitor_run.status} />
              </>
            )}
          </li>
          <li>
            Serving on:{" "}
            {l.endpoints.length ? (
              l.endpoints.map((e) => (
                <span key={e.name}>
                  <a href={link("endpoints", e.name)}>{e.name}</a> ({e.variants.join(", ")}){" "}
                </span>
              ))
            ) : (
              <span class="muted">no endpoint</span>
            )}
          </li>
        </ol>
      )}
    </Loaded>
  );
}
