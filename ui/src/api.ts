// Every call the UI makes goes through here: MLflow's REST API (`mlflow`) and Sextant's
// native API (`v1`), the same routes any client uses. With a session (authentication on),
// the browser sends the HttpOnly cookie itself and state-changing calls add the CSRF token
// the session handed out.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null) {
  csrfToken = token;
}

/** Called when any call answers 401, so the app can show its login page. */
let onUnauthenticated: () => void = () => {};
export function whenUnauthenticated(f: () => void) {
  onUnauthenticated = f;
}

type Query = Record<string, string | number | boolean | undefined | null | (string | number)[]>;

export function queryString(q: Query | undefined): string {
  if (!q) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(one))}`);
    }
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

async function call<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  const text = await res.text();
  if (!res.ok) {
    if (res.status === 401) onUnauthenticated();
    let code = `HTTP_${res.status}`;
    let message = text || res.statusText;
    try {
      const err = JSON.parse(text);
      code = err.error_code ?? code;
      message = err.message ?? message;
    } catch {
      // plain-text errors (MLflow's 401/403) stay as they are
    }
    throw new ApiError(res.status, code, message);
  }
  return (text ? JSON.parse(text) : {}) as T;
}

/** MLflow's REST API under `/ajax-api/2.0/mlflow/` (the prefix MLflow's own UI uses). */
export const mlflow = {
  get: <T>(rpc: string, q?: Query, signal?: AbortSignal) =>
    call<T>("GET", `/ajax-api/2.0/mlflow/${rpc}${queryString(q)}`, undefined, signal),
  post: <T>(rpc: string, body: unknown, signal?: AbortSignal) =>
    call<T>("POST", `/ajax-api/2.0/mlflow/${rpc}`, body, signal),
  patch: <T>(rpc: string, body: unknown) => call<T>("PATCH", `/ajax-api/2.0/mlflow/${rpc}`, body),
  del: <T>(rpc: string, body: unknown) => call<T>("DELETE", `/ajax-api/2.0/mlflow/${rpc}`, body),
};

/** MLflow 3's routes (roles and their permissions) under `/ajax-api/3.0/mlflow/`. */
export const mlflow3 = {
  get: <T>(rpc: string, q?: Query, signal?: AbortSignal) =>
    call<T>("GET", `/ajax-api/3.0/mlflow/${rpc}${queryString(q)}`, undefined, signal),
  post: <T>(rpc: string, body: unknown) => call<T>("POST", `/ajax-api/3.0/mlflow/${rpc}`, body),
  del: <T>(rpc: string, body: unknown) => call<T>("DELETE", `/ajax-api/3.0/mlflow/${rpc}`, body),
};

/** Sextant's native API under `/api/v1/`. */
export const v1 = {
  get: <T>(path: string, q?: Query, signal?: AbortSignal) =>
    call<T>("GET", `/api/v1/${path}${queryString(q)}`, undefined, signal),
  post: <T>(path: string, body: unknown = {}) => call<T>("POST", `/api/v1/${path}`, body),
  put: <T>(path: string, body: unknown) => call<T>("PUT", `/api/v1/${path}`, body),
  patch: <T>(path: string, body: unknown) => call<T>("PATCH", `/api/v1/${path}`, body),
  // The request guard wants a JSON body on every change, an empty one here.
  del: <T>(path: string) => call<T>("DELETE", `/api/v1/${path}`, {}),
};

/** A run's file as the MLflow UI fetches it. */
export function artifactUrl(runId: string, path: string): string {
  return `/get-artifact${queryString({ path, run_id: runId })}`;
}

export async function fetchText(url: string, limit = 1 << 20): Promise<{ text: string; truncated: boolean }> {
  const res = await fetch(url, { credentials: "same-origin" });
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, await res.text());
  const text = await res.text();
  return text.length > limit ? { text: text.slice(0, limit), truncated: true } : { text, truncated: false };
}

// --- MLflow shapes ---------------------------------------------------------------------------

export interface KeyValue {
  key: string;
  value: string;
}
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  run_id?: string;
}
export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: KeyValue[];
}
export interface RunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage: string;
}
export interface DatasetInput {
  tags?: KeyValue[];
  dataset: { name: string; digest: string; source_type?: string; source?: string; schema?: string; profile?: string };
}
export interface Run {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: DatasetInput[] };
}
export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  tags?: KeyValue[];
  aliases?: string[];
  user_id?: string;
}
export interface RegisteredModel {
  name: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions?: ModelVersion[];
  tags?: KeyValue[];
  aliases?: { alias: string; version: string }[];
}
export interface FileInfo {
  path: string;
  is_dir?: boolean;
  file_size?: number | string;
}

export function tag(tags: KeyValue[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.key === key)?.value;
}
