// The home page: every experiment, searchable by name.
import { useState } from "preact/hooks";
import { mlflow, type Experiment } from "../api";
import { link, replaceQuery, type Location } from "../router";
import { Empty, Loaded, Time, useAsync } from "../ui";

interface Page {
  experiments?: Experiment[];
  next_page_token?: string;
}

export function Experiments({ loc }: { loc: Location }) {
  const q = loc.query.get("q") ?? "";
  const [tokens, setTokens] = useState<string[]>([]);
  const page = tokens[tokens.length - 1];
  const state = useAsync(
    (signal) =>
      mlflow.post<Page>(
        "experiments/search",
        {
          max_results: 100,
          page_token: page,
          order_by: ["last_update_time DESC"],
          filter: nameContains(q),
        },
        signal,
      ),
    [q, page],
  );
  return (
    <>
      <h1>Experiments</h1>
      <NameSearch loc={loc} onSearch={() => setTokens([])} />
      <Loaded state={state}>
        {(data) =>
          !data.experiments?.length ? (
            q ? (
              <Empty>No experiment's name contains “{q}”.</Empty>
            ) : (
              <FirstRun />
            )
          ) : (
            <>
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">ID</th>
                    <th scope="col">Created</th>
                    <th scope="col">Last updated</th>
                  </tr>
                </thead>
                <tbody>
                  {data.experiments.map((x) => (
                    <tr key={x.experiment_id}>
                      <td>
                        <a href={link("experiments", x.experiment_id)}>{x.name}</a>
                      </td>
                      <td class="mono">{x.experiment_id}</td>
                      <td>
                        <Time ms={x.creation_time} />
                      </td>
                      <td>
                        <Time ms={x.last_update_time} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager tokens={tokens} next={data.next_page_token} onChange={setTokens} />
            </>
          )
        }
      </Loaded>
    </>
  );
}

/** MLflow's filter for names containing `q`, ignoring case. */
export function nameContains(q: string): string | undefined {
  return q ? `name ILIKE '%${q.replace(/'/g, "\\'")}%'` : undefined;
}

/** The "Name contains" box of a listing; the text goes into the page's `q`. */
export function NameSearch({ loc, onSearch }: { loc: Location; onSearch: () => void }) {
  const [text, setText] = useState(loc.query.get("q") ?? "");
  return (
    <form
      class="toolbar"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onSearch();
        replaceQuery(loc, { q: text });
      }}
    >
      <label>
        Name contains <input type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Search</button>
    </form>
  );
}

/** What to do on an empty server: the two lines of Python that log a first run here. */
export function FirstRun() {
  const origin = window.location.origin;
  return (
    <Empty>
      <p>No runs yet. Log a first run to this server from Python:</p>
      <pre>
        {`import mlflow
mlflow.set_tracking_uri("${origin}")
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.9)`}
      </pre>
      <p>
        or run the whole loop on synthetic data with <code>sextant quickstart</code>.
      </p>
    </Empty>
  );
}

/** Previous/next over page tokens; `tokens` is the stack of tokens of the pages before. */
export function Pager({ tokens, next, onChange }: { tokens: string[]; next?: string; onChange: (t: string[]) => void }) {
  if (!tokens.length && !next) return null;
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={!tokens.length} onClick={() => onChange(tokens.slice(0, -1))}>
        ← Previous
      </button>
      <span>page {tokens.length + 1}</span>
      <button type="button" disabled={!next} onClick={() => next && onChange([...tokens, next])}>
        Next →
      </button>
    </nav>
  );
}
