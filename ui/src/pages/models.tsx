// The registry: registered models, a model's versions, and one version with its approval
// (approve or reject with a comment), aliases, stage, tags and lineage.
import { useState } from "preact/hooks";
import { v1 } from "../api";
import { link, type Location } from "../router";
import { ActionButton, Empty, KeyValues, Loaded, Section, Status, Time, useAsync, useCan } from "../ui";
import { NameSearch, Pager, nameContains } from "./experiments";
import { Lineage } from "./lineage";

export interface Approval {
  status: string;
  actor?: string | null;
  comment?: string | null;
  time?: number | null;
}
export interface Version {
  name: string;
  version: number;
  description?: string | null;
  source: string;
  run_id?: string | null;
  run_link?: string | null;
  user_id?: string | null;
  stage: string;
  status: string;
  status_message?: string | null;
  approval: Approval;
  aliases: string[];
  tags: Record<string, string>;
  creation_time: number;
  last_updated_time: number;
}
export interface ApprovalSettings {
  require_distinct_approver: boolean;
  allow_pipeline_approval: boolean;
}
export interface Model {
  name: string;
  description?: string | null;
  user_id?: string | null;
  creation_time: number;
  last_updated_time: number;
  tags: Record<string, string>;
  aliases: Record<string, number>;
  latest_versions: Version[];
  approval_settings: ApprovalSettings;
  versions?: Version[];
}

export function ModelsPage({ loc }: { loc: Location }) {
  const q = loc.query.get("q") ?? "";
  const [tokens, setTokens] = useState<string[]>([]);
  const state = useAsync(
    (signal) =>
      v1.get<{ models: Model[]; next_page_token?: string | null }>(
        "models",
        { filter: nameContains(q), page_token: tokens[tokens.length - 1] },
        signal,
      ),
    [q, tokens.join()],
  );
  return (
    <>
      <h1>Models</h1>
      <NameSearch loc={loc} onSearch={() => setTokens([])} />
      <Loaded state={state}>
        {(d) =>
          !d.models.length ? (
            <Empty>
              No registered models{q ? ` whose name contains “${q}”` : ""}. Register one from a run with{" "}
              <code>mlflow.register_model("runs:/&lt;run_id&gt;/model", "my-model")</code> or a pipeline's register step.
            </Empty>
          ) : (
            <>
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Latest version</th>
                    <th scope="col">Aliases</th>
                    <th scope="col">Last updated</th>
                  </tr>
                </thead>
                <tbody>
                  {d.models.map((m) => {
                    const latest = m.latest_versions.reduce((a, v) => Math.max(a, v.version), 0);
                    return (
                      <tr key={m.name}>
                        <td>
                          <a href={link("models", m.name)}>{m.name}</a>
                        </td>
                        <td>{latest ? <a href={link("models", m.name, "versions", latest)}>Version {latest}</a> : "—"}</td>
                        <td>
                          {Object.entries(m.aliases).map(([a, v]) => (
                            <span class="chip" key={a}>
                              @{a} → v{v}
                            </span>
                          ))}
                        </td>
                        <td>
                          <Time ms={m.last_updated_time} />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              <Pager tokens={tokens} next={d.next_page_token ?? undefined} onChange={setTokens} />
            </>
          )
        }
      </Loaded>
    </>
  );
}

export function ModelPage({ name }: { name: string }) {
  const state = useAsync((signal) => v1.get<Model>(`models/${encodeURIComponent(name)}`, undefined, signal), [name]);
  return (
    <Loaded state={state}>
      {(m) => (
        <>
          <h1>
            <a href={link("models")}>Models</a> / {m.name}
          </h1>
          {m.description && <p>{m.description}</p>}
          <Section title={`Versions (${m.versions?.length ?? 0})`}>
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Approval</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Aliases</th>
                  <th scope="col">Created</th>
                  <th scope="col">Run</th>
                </tr>
              </thead>
              <tbody>
                {(m.versions ?? []).map((v) => (
                  <tr key={v.version}>
                    <td>
                      <a href={link("models", m.name, "versions", v.version)}>Version {v.version}</a>
                    </td>
                    <td>
                      <Status value={v.approval.status} />
                    </td>
                    <td>{v.stage}</td>
                    <td>
                      {v.aliases.map((a) => (
                        <span class="chip" key={a}>
                          @{a}
                        </span>
                      ))}
                    </td>
                    <td>
                      <Time ms={v.creation_time} />
                    </td>
                    <td class="mono">{v.run_id ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="Approval rules">
            <ApprovalRules name={m.name} settings={m.approval_settings} onChange={state.reload} />
          </Section>
          <Section title="Tags">
            <KeyValues rows={Object.entries(m.tags)} />
          </Section>
        </>
      )}
    </Loaded>
  );
}

// With --auth: four-eyes (a version's creator may not approve it) and whether a pipeline's gate
// may approve; a user who manages the model turns either off or on.
function ApprovalRules({ name, settings, onChange }: { name: string; settings: ApprovalSettings; onChange: () => void }) {
  const manage = useCan(`registered_model:${name}`, "MANAGE");
  const toggle = (key: keyof ApprovalSettings) => () =>
    v1.patch(`models/${encodeURIComponent(name)}/approval-settings`, { [key]: !settings[key] }).then(onChange);
  const rule = (key: keyof ApprovalSettings, text: string) => (
    <>
      {settings[key] ? "on" : "off"} <span class="muted">({text})</span>{" "}
      {manage && <ActionButton label={settings[key] ? "Turn off" : "Turn on"} run={toggle(key)} />}
    </>
  );
  return (
    <KeyValues
      rows={[
        ["Four-eyes", rule("require_distinct_approver", "with sign-in, nobody approves a version they created")],
        ["Pipeline approval", rule("allow_pipeline_approval", "a pipeline's register step may approve what it registers")],
      ]}
    />
  );
}

export function VersionPage({ name, version }: { name: string; version: string }) {
  const state = useAsync((signal) => v1.get<Version>(`models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`, undefined, signal), [name, version]);
  return (
    <Loaded state={state}>
      {(v) => (
        <>
          <h1>
            <a href={link("models")}>Models</a> / <a href={link("models", name)}>{name}</a> / Version {v.version}
          </h1>
          <div class="columns">
            <Section title="About">
              <KeyValues
                rows={[
                  ["Status", <Status value={v.status} />],
                  ["Stage", v.stage],
                  ["Aliases", v.aliases.length ? v.aliases.map((a) => `@${a}`).join(", ") : "—"],
                  ["Source", <span class="mono">{v.source}</span>],
                  ["Run", v.run_id ? <a href={`#/runs/${encodeURIComponent(v.run_id)}`}>{v.run_id}</a> : "—"],
                  ["Created", <Time ms={v.creation_time} />],
                  ["Registered by", v.user_id ?? "—"],
                  ["Description", v.description || "—"],
                ]}
              />
            </Section>
            <Section title="Approval">
              <ApprovalPanel v={v} onChange={state.reload} />
            </Section>
          </div>
          <Section title="Tags">
            <KeyValues rows={Object.entries(v.tags)} />
          </Section>
          <Section title="Lineage">
            <Lineage name={name} version={String(v.version)} />
          </Section>
        </>
      )}
    </Loaded>
  );
}

function ApprovalPanel({ v, onChange }: { v: Version; onChange: () => void }) {
  const [comment, setComment] = useState("");
  const manage = useCan(`registered_model:${v.name}`, "MANAGE");
  const decided = v.approval.status !== "pending";
  const decide = (status: "approved" | "rejected") => () =>
    v1
      .post(`models/${encodeURIComponent(v.name)}/versions/${v.version}/approval`, { status, comment: comment || undefined, force: decided })
      .then(onChange);
  return (
    <>
      <KeyValues
        rows={[
          ["Decision", <Status value={v.approval.status} />],
          ["By", v.approval.actor ?? "—"],
          ["When", <Time ms={v.approval.time} />],
          ["Why", v.approval.comment ?? "—"],
        ]}
      />
      {manage && (
        <>
          <label class="block">
            Comment <textarea rows={2} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
          </label>
          <div class="toolbar">
            <ActionButton label="Approve" kind="primary" run={decide("approved")} confirm={decided ? "Replace the decision already made?" : undefined} />
            <ActionButton label="Reject" kind="danger" run={decide("rejected")} confirm={decided ? "Replace the decision already made?" : undefined} />
          </div>
        </>
      )}
    </>
  );
}
