// Hash routes (`/#/experiments/1/runs/abc`): what MLflow's own links use, so the links the
// client prints after every run open the matching page here. The query part of the hash
// holds a page's state (filter, sort, columns), so reload, back and a shared link all work.
import { useEffect, useState } from "preact/hooks";

export interface Location {
  path: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Location {
  const raw = hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?", 2);
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { path: parts, query: new URLSearchParams(query) };
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const on = () => setLoc(parseHash(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return loc;
}

/** `href` for a page: `link("experiments", id, {filter})` → `#/experiments/1?filter=…`. */
export function link(...parts: (string | number | Record<string, string | undefined>)[]): string {
  let query = "";
  const last = parts[parts.length - 1];
  if (typeof last === "object") {
    parts = parts.slice(0, -1);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(last)) if (v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) query = `?${s}`;
  }
  return `#/${parts.map((p) => encodeURIComponent(String(p))).join("/")}${query}`;
}

/** Changes the page's query state: one history entry per change, so back undoes it. */
export function replaceQuery(loc: Location, changes: Record<string, string | undefined>) {
  const q = new URLSearchParams(loc.query);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === "") q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  const hash = `#/${loc.path.map(encodeURIComponent).join("/")}${s ? `?${s}` : ""}`;
  window.location.hash = hash;
}
