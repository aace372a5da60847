// Every channel the user may see, as small records for the map: loaded once per session,
// progressively (keyset pages of 1,000, several divisions in parallel), kept while the
// operator moves between pages.

import { api, ApiError, qs } from '../api/client';
import type { Channel, Page, Statistics } from '../api/types';
import { createStore } from './store';

export interface Pt {
  id: string;
  name: string;
  x: number; // longitude
  y: number; // latitude
  s: string; // status
  c: number; // point class 1..3, 0 unknown
  t: string; // tier or ''
  d: string; // department or ''
  v: string; // division code
  p: number; // ptz type, 0 unknown
}

export interface PointsState {
  points: Pt[];
  /** Channels without coordinates (not on the map, but counted). */
  unplaced: number;
  total: number | null;
  loaded: number;
  done: boolean;
  error: unknown;
  startedAt: number;
  firstAt: number | null;
  doneAt: number | null;
  /** Bumped on every batch so views know to rebuild. */
  version: number;
  via: 'compact' | 'pages' | '';
  /** Server time of the compact answer: changes are asked for from a little before it. */
  asOf: string | null;
}

const initial = (): PointsState => ({
  points: [],
  unplaced: 0,
  total: null,
  loaded: 0,
  done: false,
  error: null,
  startedAt: 0,
  firstAt: null,
  doneAt: null,
  version: 0,
  via: '',
  asOf: null,
});

export const pointsStore = createStore<PointsState>(initial());
let running: Promise<void> | null = null;
let abort: AbortController | null = null;

function toPt(c: Channel): Pt | null {
  if (c.longitude === null || c.latitude === null || c.longitude === undefined || c.latitude === undefined) return null;
  return {
    id: c.id,
    name: c.name,
    x: c.longitude,
    y: c.latitude,
    s: c.status ?? 'UNKNOWN',
    c: c.point_class ?? 0,
    t: c.tier ?? '',
    d: c.department ?? '',
    v: c.division_code ?? '',
    p: c.ptz_type ?? 0,
  };
}

function add(batch: Pt[], seen: number): void {
  pointsStore.set((s) => ({
    ...s,
    points: s.points.concat(batch),
    unplaced: s.unplaced + (seen - batch.length),
    loaded: s.loaded + seen,
    firstAt: s.firstAt ?? (batch.length ? performance.now() : null),
    version: s.version + 1,
  }));
}

/** Compact form, if the platform offers it: GET /channels/points → {fields, items: [[...]]}. */
async function loadCompact(signal: AbortSignal): Promise<boolean> {
  let r: { fields: string[]; items: unknown[][]; total?: number; as_of?: string };
  try {
    r = await api(`/channels/points`, { signal });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 422)) return false;
    throw e;
  }
  if (!r || !Array.isArray(r.fields) || !Array.isArray(r.items)) return false;
  const pts = compactRows(r.fields, r.items);
  pointsStore.set((s) => ({ ...s, total: r.total ?? r.items.length, via: 'compact', asOf: r.as_of ?? null }));
  add(pts, r.items.length);
  return true;
}

/** Rows of GET /channels/points as points (rows without coordinates are skipped). */
function compactRows(fields: string[], items: unknown[][]): Pt[] {
  const ix = (n: string) => fields.indexOf(n);
  const [id, name, lon, lat, st, cl, ti, dep, div, ptz] = ['id', 'name', 'longitude', 'latitude', 'status', 'point_class', 'tier', 'department', 'division_code', 'ptz_type'].map(ix);
  const pts: Pt[] = [];
  for (const row of items) {
    const x = row[lon] as number | null;
    const y = row[lat] as number | null;
    if (x === null || y === null || x === undefined || y === undefined) continue;
    pts.push({
      id: String(row[id]),
      name: name >= 0 ? String(row[name] ?? '') : String(row[id]),
      x,
      y,
      s: st >= 0 ? String(row[st] ?? 'UNKNOWN') : 'UNKNOWN',
      c: cl >= 0 ? Number(row[cl] ?? 0) : 0,
      t: ti >= 0 ? String(row[ti] ?? '') : '',
      d: dep >= 0 ? String(row[dep] ?? '') : '',
      v: div >= 0 ? String(row[div] ?? '') : '',
      p: ptz >= 0 ? Number(row[ptz] ?? 0) : 0,
    });
  }
  return pts;
}

/** Seconds of overlap when asking what changed: a row committed late carries an earlier time. */
const OVERLAP_MS = 10000;
let byId: { points: Pt[]; map: Map<string, number> } | null = null;

/**
 * Bring the map up to date: what changed since the last answer (status from keepalives,
 * catalogs and notifies; edits; new points). Returns how many points changed.
 */
export async function pollChanges(): Promise<number> {
  const s0 = pointsStore.get();
  if (!s0.done || s0.error || !s0.asOf) return 0;
  const since = new Date(Date.parse(s0.asOf) - OVERLAP_MS).toISOString();
  const r: { fields: string[]; items: unknown[][]; as_of: string } = await api(`/channels/points${qs({ changed_after: since })}`);
  const cur = pointsStore.get();
  if (cur.startedAt !== s0.startedAt) return 0; // reloaded meanwhile (another user)
  if (!byId || byId.points !== cur.points) byId = { points: cur.points, map: new Map(cur.points.map((p, i) => [p.id, i])) };
  const index = byId.map;
  let points = cur.points;
  let changed = 0;
  for (const p of compactRows(r.fields, r.items)) {
    const i = index.get(p.id);
    if (i === undefined) {
      if (points === cur.points) points = points.slice();
      index.set(p.id, points.length);
      points.push(p);
      changed++;
      continue;
    }
    const o = points[i];
    if (o.s !== p.s || o.x !== p.x || o.y !== p.y || o.name !== p.name || o.c !== p.c || o.t !== p.t || o.d !== p.d || o.v !== p.v || o.p !== p.p) {
      points[i] = p;
      changed++;
    }
  }
  if (points !== cur.points) byId = { points, map: index };
  pointsStore.set((s) => ({ ...s, asOf: r.as_of, points, loaded: s.loaded + (points.length - cur.points.length), version: changed ? s.version + 1 : s.version }));
  return changed;
}

async function sequence(params: Record<string, string | number | boolean | null | undefined>, signal: AbortSignal, withTotal: boolean): Promise<void> {
  let cursor: string | null = null;
  let first = true;
  do {
    const page: Page<Channel> = await api(`/channels${qs({ ...params, cursor, limit: 1000, with_total: first && withTotal ? true : undefined })}`, { signal });
    if (first && withTotal && typeof page.total === 'number') pointsStore.set((s) => ({ ...s, total: page.total ?? null }));
    first = false;
    const pts: Pt[] = [];
    for (const c of page.items) {
      const p = toPt(c);
      if (p) pts.push(p);
    }
    add(pts, page.items.length);
    cursor = page.next_cursor;
  } while (cursor && !signal.aborted);
}

let statsCache: { at: number; p: Promise<Statistics> } | null = null;

/** The user's overall statistics, shared by the map's loader and its filters for a few seconds. */
export function overallStatistics(): Promise<Statistics> {
  if (!statsCache || Date.now() - statsCache.at > 10000) {
    const p = api<Statistics>('/statistics');
    p.catch(() => {
      statsCache = null;
    });
    statsCache = { at: Date.now(), p };
  }
  return statsCache.p;
}

async function loadPages(signal: AbortSignal): Promise<void> {
  pointsStore.set((s) => ({ ...s, via: 'pages' }));
  // Keyset pages are sequential; divisions are independent, so load up to 4 of them at once
  // when the statistics say they add up to everything.
  let parts: { code: string; points: number }[] = [];
  let total = 0;
  try {
    const st = await overallStatistics();
    total = st.points;
    parts = st.children.filter((c) => c.points > 0);
    pointsStore.set((s) => ({ ...s, total: st.points }));
  } catch {
    /* no statistics right: one sequence */
  }
  const sum = parts.reduce((a, c) => a + c.points, 0);
  if (parts.length > 1 && sum === total) {
    // biggest first, so the map fills evenly
    const queue = parts.slice().sort((a, b) => b.points - a.points);
    const worker = async () => {
      for (let p = queue.shift(); p; p = queue.shift()) await sequence({ division: p.code }, signal, false);
    };
    await Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker));
  } else {
    await sequence({}, signal, total === 0);
  }
}

export function loadPoints(force = false): Promise<void> {
  if (running && !force) return running;
  abort?.abort();
  abort = new AbortController();
  const signal = abort.signal;
  pointsStore.set({ ...initial(), startedAt: performance.now() });
  running = (async () => {
    try {
      void overallStatistics().catch(() => undefined); // in parallel with the probe below
      if (!(await loadCompact(signal))) await loadPages(signal);
      pointsStore.set((s) => ({ ...s, done: true, doneAt: performance.now(), version: s.version + 1 }));
    } catch (e) {
      if (!signal.aborted) pointsStore.set((s) => ({ ...s, error: e, done: true, doneAt: performance.now() }));
    }
  })();
  return running;
}

/** Forget the points (on logout: another user sees other points). */
export function resetPoints(): void {
  abort?.abort();
  statsCache = null;
  running = null;
  pointsStore.set(initial());
}

/** Refresh statuses without reloading: re-read the pages and patch the status field. */
export async function refreshStatuses(): Promise<number> {
  const byId = new Map(pointsStore.get().points.map((p) => [p.id, p]));
  let changed = 0;
  let cursor: string | null = null;
  do {
    const page: Page<Channel> = await api(`/channels${qs({ cursor, limit: 1000 })}`);
    for (const c of page.items) {
      const p = byId.get(c.id);
      if (p && p.s !== c.status) {
        p.s = c.status;
        changed++;
      }
    }
    cursor = page.next_cursor;
  } while (cursor);
  if (changed) pointsStore.set((s) => ({ ...s, version: s.version + 1 }));
  return changed;
}
