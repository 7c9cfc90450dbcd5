// An experiment's runs: a table with chosen param/metric/tag columns, a filter box taking
// MLflow's search grammar, sorting by any column, server-side paging, selection to compare.
import { useEffect, useState } from "preact/hooks";
import { ApiError, mlflow, v1, type Experiment, type Run } from "../api";
import { link, replaceQuery, type Location } from "../router";
import { Empty, Loaded, Status, Time, duration, num, useAsync } from "../ui";
import { FirstRun, Pager } from "./experiments";

interface SearchPage {
  runs?: Run[];
  next_page_token?: string;
}

/** Which value of a metric a column shows: the latest, or the smallest or largest ever logged. */
type Agg = "min" | "max";

/** A column of the runs table: `metrics.loss` (with `agg`: its min or max), `params.lr`, `tags.team`. */
type Column = { kind: "metrics" | "params" | "tags"; key: string; agg?: Agg };

/** `cols=metrics.loss:min,params.lr`: keys are URI-encoded, so a bare `:` only ever starts the aggregate. */
function parseColumns(s: string | null): Column[] {
  if (!s) return [];
  return s
    .split(",")
    .filter(Boolean)
    .map((c) => {
      const dot = c.indexOf(".");
      const kind = c.slice(0, dot) as Column["kind"];
      let rest = c.slice(dot + 1);
      let agg: Agg | undefined;
      const colon = rest.lastIndexOf(":");
      if (colon >= 0) {
        const a = rest.slice(colon + 1);
        if (kind === "metrics" && (a === "min" || a === "max")) agg = a;
        rest = rest.slice(0, colon);
      }
      return { kind, key: decodeURIComponent(rest), agg };
    })
    .filter((c) => ["metrics", "params", "tags"].includes(c.kind));
}

function columnsParam(cols: Column[]): string {
  return cols.map((c) => `${c.kind}.${encodeURIComponent(c.key)}${c.agg ? `:${c.agg}` : ""}`).join(",");
}

/** `metrics.`loss`` as MLflow's grammar quotes an identifier; `min(metrics.`loss`)` for an aggregate
 * (Sextant's extension of the grammar). */
function sortKey(c: Column): string {
  const ident = `${c.kind}.\`${c.key.replaceAll("`", "``")}\``;
  return c.agg ? `${c.agg}(${ident})` : ident;
}

/** One run's metric from `/api/v1/runs/metric-summaries`. */
export interface MetricSummary {
  run_id: string;
  key: string;
  last: number | string;
  min: number | string;
  max: number | string;
  step: number;
  timestamp: number;
}

type Summaries = Map<string, MetricSummary>;

function cell(run: Run, c: Column, summaries: Summaries | undefined): string | number | undefined {
  if (c.kind === "metrics") {
    if (c.agg) return summaries?.get(`${run.info.run_id}\u0000${c.key}`)?.[c.agg];
    return run.data.metrics?.find((m) => m.key === c.key)?.value;
  }
  const list = c.kind === "params" ? run.data.params : run.data.tags;
  return list?.find((p) => p.key === c.key)?.value;
}

export function ExperimentPage({ loc, id }: { loc: Location; id: string }) {
  const filter = loc.query.get("filter") ?? "";
  const order = loc.query.get("order") ?? "attributes.start_time DESC";
  const chosen = parseColumns(loc.query.get("cols"));
  const [tokens, setTokens] = useState<string[]>([]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const page = tokens[tokens.length - 1];

  const experiment = useAsync((signal) => mlflow.get<{ experiment: Experiment }>("experiments/get", { experiment_id: id }, signal), [id]);
  const runs = useAsync(
    (signal) =>
      mlflow.post<SearchPage>(
        "runs/search",
        { experiment_ids: [id], filter, order_by: [order], max_results: 100, page_token: page, run_view_type: "ACTIVE_ONLY" },
        signal,
      ),
    [id, filter, order, page],
  );

  // The min and max of the shown rows' metric columns, in one call for the page.
  const pageIds = (runs.data?.runs ?? []).map((r) => r.info.run_id);
  const aggKeys = [...new Set(chosen.filter((c) => c.kind === "metrics" && c.agg).map((c) => c.key))];
  const summaries = useAsync(
    async (signal): Promise<Summaries> => {
      if (!pageIds.length || !aggKeys.length) return new Map();
      const page = await v1.get<{ summaries: MetricSummary[] }>("runs/metric-summaries", { run_id: pageIds, key: aggKeys }, signal);
      return new Map(page.summaries.map((m) => [`${m.run_id}\u0000${m.key}`, m]));
    },
    [pageIds.join(","), aggKeys.join("\u0000")],
  );

  const setOrder = (c: string) => {
    const desc = order === `${c} DESC`;
    setTokens([]);
    replaceQuery(loc, { order: desc ? `${c} ASC` : `${c} DESC` });
  };
  /** Shows another value of a metric column; a sort on that column follows it. */
  const setAgg = (c: Column, agg: Agg | undefined) => {
    const next = { ...c, agg };
    const cols = columnsParam(chosen.map((x) => (x === c ? next : x)));
    const old = sortKey(c);
    const dir = order === `${old} DESC` ? "DESC" : order === `${old} ASC` ? "ASC" : undefined;
    if (dir) setTokens([]);
    replaceQuery(loc, dir ? { cols, order: `${sortKey(next)} ${dir}` } : { cols });
  };
  const header = (label: string, key: string, column?: Column) => {
    const dir = order === `${key} DESC` ? "descending" : order === `${key} ASC` ? "ascending" : "none";
    return (
      <th scope="col" aria-sort={dir} key={key}>
        <button type="button" class="sort" onClick={() => setOrder(key)} title={`sort by ${label}`}>
          {label} {dir === "descending" ? "▼" : dir === "ascending" ? "▲" : ""}
        </button>
        {column?.kind === "metrics" && (
          <select
            class="agg"
            aria-label={`value of ${column.key}`}
            value={column.agg ?? "last"}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              setAgg(column, v === "min" || v === "max" ? v : undefined);
            }}
          >
            <option value="last">last</option>
            <option value="min">min</option>
            <option value="max">max</option>
          </select>
        )}
      </th>
    );
  };

  return (
    <>
      <Loaded state={experiment}>
        {(d) => (
          <h1>
            <a href={link("")}>Experiments</a> / {d.experiment.name}
          </h1>
        )}
      </Loaded>
      <FilterBox
        value={filter}
        error={runs.error}
        onSubmit={(f) => {
          setTokens([]);
          replaceQuery(loc, { filter: f });
        }}
      />
      {!(runs.error instanceof ApiError && runs.error.status === 400 && filter) && (
      <Loaded state={runs}>
        {(data) => (
          <>
            <div class="toolbar">
              <ColumnChooser
                experimentId={id}
                chosen={chosen}
                onChange={(cols) => replaceQuery(loc, { cols: columnsParam(cols) })}
              />
              <a
                class={`button${selected.size < 2 ? " disabled" : ""}`}
                aria-disabled={selected.size < 2}
                href={selected.size >= 2 ? link("compare", { runs: [...selected].join(","), experiment: id }) : undefined}
              >
                Compare {selected.size} runs
              </a>
            </div>
            {!data.runs?.length ? (
              filter ? <Empty>No run matches this filter.</Empty> : <FirstRun />
            ) : (
              <div class="scroll" tabIndex={0}>
                <table class="grid runs">
                  <thead>
                    <tr>
                      <th scope="col">
                        <span class="sr-only">select</span>
                      </th>
                      {header("Run", "attributes.run_name")}
                      {header("Started", "attributes.start_time")}
                      <th scope="col">Duration</th>
                      {header("Status", "attributes.status")}
                      {header("User", "attributes.user_id")}
                      {chosen.map((c) => header(`${c.kind === "metrics" ? "" : `${c.kind.slice(0, -1)} `}${c.key}`, sortKey(c), c))}
                    </tr>
                  </thead>
                  <tbody>
                    {data.runs.map((r) => (
                      <tr key={r.info.run_id} class={selected.has(r.info.run_id) ? "selected" : undefined}>
                        <td>
                          <input
                            type="checkbox"
                            aria-label={`select run ${r.info.run_name ?? r.info.run_id}`}
                            checked={selected.has(r.info.run_id)}
                            onChange={() => {
                              const s = new Set(selected);
                              if (!s.delete(r.info.run_id)) s.add(r.info.run_id);
                              setSelected(s);
                            }}
                          />
                        </td>
                        <td>
                          <a href={link("experiments", id, "runs", r.info.run_id)}>{r.info.run_name || r.info.run_id}</a>
                        </td>
                        <td>
                          <Time ms={r.info.start_time} />
                        </td>
                        <td>{duration(r.info.start_time, r.info.end_time)}</td>
                        <td>
                          <Status value={r.info.status} />
                        </td>
                        <td>{r.info.user_id || "—"}</td>
                        {chosen.map((c) => {
                          const v = cell(r, c, summaries.data);
                          return (
                            <td key={`${c.kind}.${c.key}`} class={c.kind === "metrics" ? "num" : undefined}>
                              {c.kind === "metrics" ? num(v) : (v ?? "—")}
                            </td>
                          );
                        })}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            <Pager tokens={tokens} next={data.next_page_token} onChange={setTokens} />
          </>
        )}
      </Loaded>
      )}
    </>
  );
}

interface FilterCheck {
  valid: boolean;
  message: string | null;
  /** Where the filter is wrong, in characters (code points) from 0. */
  start: number | null;
  end: number | null;
}

function FilterBox({ value, error, onSubmit }: { value: string; error?: Error; onSubmit: (f: string) => void }) {
  const [text, setText] = useState(value);
  const bad = error instanceof ApiError && error.status === 400 && value ? error : undefined;
  // The search answers MLflow's message only; the server says where it points.
  const where = useAsync(
    async (signal) => (bad ? v1.get<FilterCheck>("filters/check", { kind: "runs", filter: value }, signal) : undefined),
    [bad?.message, value],
  );
  const d = where.data;
  const span = d && !d.valid && d.start !== null && d.end !== null ? { start: d.start, end: d.end } : undefined;
  // Positions count code points, as Array.from splits a string.
  const wrong = span ? Array.from(value).slice(span.start, span.end).join("") : "";
  return (
    <form
      class="filter"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit(text.trim());
      }}
    >
      <label for="run-filter">Filter</label>
      <input
        id="run-filter"
        type="search"
        class="mono"
        placeholder="metrics.rmse < 1 and params.model = 'gbdt'"
        value={text}
        aria-invalid={bad ? "true" : undefined}
        aria-describedby={bad ? "filter-error" : undefined}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Search</button>
      {bad && (
        <div id="filter-error" class="filter-error" role="alert">
          {span && (
            <pre class="mono caret" aria-hidden="true">
              {value}
              {"\n"}
              {" ".repeat(span.start)}
              {"^".repeat(Math.max(1, span.end - span.start))}
            </pre>
          )}
          <span>
            {span ? `at position ${span.start + 1}${wrong ? ` (${wrong})` : ""}: ` : ""}
            {bad.message}
          </span>
        </div>
      )}
    </form>
  );
}

interface KeysPage {
  keys: string[];
  truncated: boolean;
}

const SHOWN_KEYS = 200;

/** Adds and removes columns; asks the server for the experiment's keys matching the search
 * instead of listing thousands of them. */
function ColumnChooser({ experimentId, chosen, onChange }: { experimentId: string; chosen: Column[]; onChange: (c: Column[]) => void }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  // Asked once typing pauses, not on every keystroke.
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = window.setTimeout(() => setQ(typed), 200);
    return () => window.clearTimeout(t);
  }, [typed]);
  const keys = useAsync(
    async (signal) => {
      if (!open) return undefined;
      const kinds = ["metrics", "params", "tags"] as const;
      const pages = await Promise.all(
        kinds.map((kind) => v1.get<KeysPage>("runs/keys", { experiment_id: experimentId, kind, contains: q || undefined, max_results: SHOWN_KEYS }, signal)),
      );
      const columns = kinds.flatMap((kind, i) => pages[i].keys.filter((k) => kind !== "tags" || !k.startsWith("mlflow.")).map((key) => ({ kind, key }) as Column));
      return { columns, truncated: pages.some((p) => p.truncated) };
    },
    [open, q, experimentId],
  );
  const isChosen = (c: Column) => chosen.some((x) => x.kind === c.kind && x.key === c.key);
  return (
    <div class="chooser">
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        Columns ({chosen.length})
      </button>
      {open && (
        <div class="popover">
          <label>
            Find a key <input type="search" value={typed} autoFocus onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
          </label>
          <Loaded state={keys}>
            {(d) =>
              d === undefined ? null : (
                <>
                  <p class="muted" role="status">
                    {d.columns.length ? `${d.columns.length} keys` : "No key matches."}
                    {d.truncated ? ` shown; more match: narrow the search` : ""}
                  </p>
                  <ul>
                    {d.columns.map((c) => (
                      <li key={`${c.kind}.${c.key}`}>
                        <label>
                          <input
                            type="checkbox"
                            checked={isChosen(c)}
                            onChange={() => onChange(isChosen(c) ? chosen.filter((x) => !(x.kind === c.kind && x.key === c.key)) : [...chosen, c])}
                          />{" "}
                          <span class="muted">{c.kind}.</span>
                          {c.key}
                        </label>
                      </li>
                    ))}
                  </ul>
                </>
              )
            }
          </Loaded>
        </div>
      )}
    </div>
  );
}
