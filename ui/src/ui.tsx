// Small building blocks every page uses: loading data, showing errors, times, tables.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, v1 } from "./api";

export interface Async<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change; a newer call cancels the older one's result. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctl.signal.aborted && setState({ error, loading: false }),
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function ErrorBox({ error }: { error: unknown }) {
  const e = error as Error;
  const code = e instanceof ApiError ? `${e.status} ${e.code}: ` : "";
  return (
    <div class="error" role="alert">
      {code}
      {e?.message ?? String(error)}
    </div>
  );
}

/** Data, or the loading line, or the error: the three states of every panel. */
export function Loaded<T>({ state, children }: { state: Async<T>; children: (data: T) => ComponentChildren }) {
  if (state.error) return <ErrorBox error={state.error} />;
  if (state.data === undefined) return <p class="muted">Loading…</p>;
  return <>{children(state.data)}</>;
}

const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A time in the browser's zone, with UTC on hover. */
export function Time({ ms }: { ms?: number | string | null }) {
  const n = typeof ms === "string" ? Number(ms) : ms;
  if (n === undefined || n === null || !Number.isFinite(n) || n <= 0) return <span class="muted">—</span>;
  const d = new Date(n);
  return (
    <time dateTime={d.toISOString()} title={d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")}>
      {fmt.format(d)}
    </time>
  );
}

export function duration(startMs?: number, endMs?: number): string {
  if (!startMs || !endMs || endMs < startMs) return "—";
  const s = (endMs - startMs) / 1000;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function num(v: number | string | undefined | null): string {
  if (v === undefined || v === null || v === "") return "—";
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return String(n);
  const a = Math.abs(n);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? n.toExponential(4) : String(Number(n.toPrecision(6)));
}

export function Status({ value }: { value?: string }) {
  const v = (value ?? "").toLowerCase().replace(/\s+/g, "_");
  return <span class={`status status-${v.replace(/[^a-z_]/g, "")}`}>{value ?? "—"}</span>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section>
      <div class="section-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A two-column table of keys and values. */
export function KeyValues({ rows, empty }: { rows: [string, ComponentChildren][]; empty?: string }) {
  if (!rows.length) return <p class="muted">{empty ?? "None."}</p>;
  return (
    <table class="kv">
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A button for an action that calls the API; shows the error in place when it fails. */
export function ActionButton({
  label,
  run,
  confirm: question,
  kind,
}: {
  label: string;
  run: () => Promise<unknown>;
  confirm?: string;
  kind?: "danger" | "primary";
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <span class="action">
      <button
        type="button"
        class={kind}
        disabled={busy}
        onClick={async () => {
          if (question && !window.confirm(question)) return;
          setBusy(true);
          setError(undefined);
          try {
            await run();
          } catch (e) {
            setError(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? `${label}…` : label}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </span>
  );
}

const RANK: Record<string, number> = { DENY: 0, NO_PERMISSIONS: 1, READ: 2, USE: 3, EDIT: 4, MANAGE: 5 };

/** Whether the caller holds at least `level` on `resource` (`endpoint:churn`; `null` while the
 * page does not know it yet), as the server decides it; `false` until known, so a button the
 * server would refuse never flashes. */
export function useCan(resource: string | null, level: "USE" | "EDIT" | "MANAGE"): boolean {
  const state = useAsync(
    async (signal) =>
      resource === null ? undefined : v1.get<{ permissions: Record<string, string> }>("session/permissions", { resource }, signal),
    [resource],
  );
  const got = resource === null ? undefined : state.data?.permissions[resource];
  return got !== undefined && RANK[got] >= RANK[level];
}
