// The one way the console talks to the platform: bearer token, RFC 9457 problems, and the
// purpose dialog for sensitive actions (403 with a problem type ending in "purpose-required").

export const API = '/api/v1';

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  [k: string]: unknown;
}

export class ApiError extends Error {
  status: number;
  problem: Problem;
  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  /** The endpoint itself is missing (a feature another issue has not delivered yet). */
  get missing(): boolean {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }
  get refused(): boolean {
    return this.status === 403;
  }
}

export interface Purpose {
  purpose: string;
  caseNo: string;
}

/** Asks the operator for a purpose; `problem` says whether a case number is required. */
type PurposeAsker = (what: string, problem: Problem) => Promise<Purpose | null>;
/** Offers to request an approval (403 approval-required); resolves when the dialog closes. */
type ApprovalAsker = (what: string, problem: Problem) => Promise<void>;

const TOKEN_KEY = 'xl.token';
const USER_KEY = 'xl.user';
let purposeAsker: PurposeAsker | null = null;
let approvalAsker: ApprovalAsker | null = null;

export function setPurposeAsker(f: PurposeAsker | null): void {
  purposeAsker = f;
}

export function setApprovalAsker(f: ApprovalAsker | null): void {
  approvalAsker = f;
}

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setSession(token: string | null, user?: unknown): void {
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    if (user) localStorage.setItem(USER_KEY, JSON.stringify(user));
  } else {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  }
}

export function storedUser<T>(): T | null {
  const s = localStorage.getItem(USER_KEY);
  try {
    return s ? (JSON.parse(s) as T) : null;
  } catch {
    return null;
  }
}

export function isPurposeRequired(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403 && /purpose-required$/.test(e.problem.type ?? '');
}

export function isApprovalRequired(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403 && /approval-required$/.test(e.problem.type ?? '');
}

export function purposeHeaders(p: Purpose | null | undefined): Record<string, string> {
  if (!p) return {};
  const h: Record<string, string> = { 'X-Purpose': encodeURIComponent(p.purpose) };
  if (p.caseNo) h['X-Case'] = encodeURIComponent(p.caseNo);
  return h;
}

export interface RequestOpts {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** What the purpose dialog says is being done (e.g. "实时视频 · 东门"). */
  purposeFor?: string;
  /** Do not treat 401 as an expired session (login itself). */
  anonymous?: boolean;
  /** A purpose already stated for this kind of action (sent from the first try). */
  purpose?: Purpose | null;
  /** Told the purpose the operator stated when the platform asked for one. */
  onPurpose?: (p: Purpose) => void;
}

export async function raw(path: string, opts: RequestOpts = {}, stated?: Purpose): Promise<Response> {
  const purpose = stated ?? opts.purpose ?? undefined;
  const headers: Record<string, string> = { Accept: 'application/json', ...(opts.headers ?? {}) };
  const token = getToken();
  if (token && !opts.anonymous) headers.Authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (opts.body instanceof FormData) body = opts.body;
  else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  Object.assign(headers, purposeHeaders(purpose));
  const res = await fetch(path.startsWith('/') && !path.startsWith(API) && !path.startsWith('/healthz') ? API + path : path, {
    method: opts.method ?? (body ? 'POST' : 'GET'),
    headers,
    body,
    signal: opts.signal,
  });
  if (res.ok) return res;
  const problem = await readProblem(res);
  if (res.status === 401 && !opts.anonymous) {
    window.dispatchEvent(new CustomEvent('xl:unauthorized', { detail: problem.detail }));
  }
  const err = new ApiError(res.status, problem);
  if (isPurposeRequired(err) && purposeAsker && !purpose) {
    const p = await purposeAsker(opts.purposeFor ?? problem.detail ?? path, problem);
    if (p) {
      opts.onPurpose?.(p);
      return raw(path, opts, p);
    }
  }
  if (isApprovalRequired(err) && approvalAsker) await approvalAsker(opts.purposeFor ?? path, problem);
  throw err;
}

export async function readProblem(res: Response): Promise<Problem> {
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      if (j && typeof j === 'object') {
        // FastAPI validation errors: {detail: [{loc, msg}]}
        if (Array.isArray(j.detail)) {
          j.detail = j.detail
            .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join('.')}: ${d.msg}`)
            .join('; ');
        }
        return { status: res.status, ...j };
      }
    } catch {
      /* not JSON */
    }
    return { status: res.status, title: res.statusText, detail: text.slice(0, 300) || res.statusText };
  } catch {
    return { status: res.status, title: res.statusText };
  }
}

export async function api<T>(path: string, opts: RequestOpts = {}): Promise<T> {
  const res = await raw(path, opts);
  if (res.status === 204) return undefined as T;
  const ct = res.headers.get('content-type') ?? '';
  if (ct.includes('json')) return (await res.json()) as T;
  return (await res.text()) as unknown as T;
}

export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** `path` with `params` added (path may already carry a query, e.g. "/channels?kind="). */
export function withQs(path: string, params: Record<string, string | number | boolean | null | undefined>): string {
  const q = qs(params);
  if (!q) return path;
  return path.includes('?') ? `${path}&${q.slice(1)}` : path + q;
}

/** Download a file the API serves (with the bearer token), under the name the server gives. */
export async function download(path: string, fallbackName: string, opts: RequestOpts = {}): Promise<void> {
  const res = await raw(path, opts);
  const blob = await res.blob();
  const cd = res.headers.get('content-disposition') ?? '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  saveBlob(blob, m ? decodeURIComponent(m[1]) : fallbackName);
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/** Follow keyset pages until the end (or `max` items). */
export async function allPages<T>(
  path: string,
  params: Record<string, string | number | boolean | null | undefined>,
  max = 100000,
  onPage?: (items: T[]) => void,
  signal?: AbortSignal,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; next_cursor: string | null } = await api(
      withQs(path, { ...params, cursor, limit: params.limit ?? 1000 }),
      { signal },
    );
    out.push(...page.items);
    onPage?.(page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
