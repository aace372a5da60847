// Reports made offline: kept in IndexedDB (the photo as a Blob) and sent, oldest first, when
// the phone is back online — each exactly once:
// - every report carries a reference made on the phone (`ref`); the platform takes a ref in once
//   per reporter and answers a repeat with the case made the first time, so a report whose
//   answer was lost on the way back is sent again safely;
// - one flush at a time (in this page, and across the app's tabs with the Web Locks API), so two
//   'online' events in a row do not send the same report twice;
// - a report is kept for its reporter only: another user logging in on the phone does not send
//   it under their name.
// A kept report the platform refuses (4xx) is dropped, not retried forever; a lapsed session
// (401), the rate limit (429) and server errors (5xx) keep it for later. A report sent at once
// is kept only when no answer came (or a 5xx): a refusal or the rate limit is shown instead.
import { ApiError, api } from '../api/client';

export interface Report {
  category: string;
  description: string;
  longitude: number;
  latitude: number;
  anonymous: boolean;
  photo: Blob | null;
}

interface Kept extends Report {
  ref: string;
  /** who made it (their user name) */
  by: string;
}

export interface Flushed {
  sent: number;
  /** refused by the platform (and dropped), with its reason */
  refused: { category: string; reason: string }[];
}

const DB = 'xl-mobile';
const STORE = 'reports';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { autoIncrement: true });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const req = f(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

/** A fresh reference: 128 random bits (getRandomValues, which unlike randomUUID works over plain
 *  HTTP too, as a phone app on a closed network is often served). */
export function newRef(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function form(r: Report, ref: string): FormData {
  const f = new FormData();
  f.set('category', r.category);
  f.set('description', r.description);
  f.set('longitude', String(r.longitude));
  f.set('latitude', String(r.latitude));
  f.set('anonymous', r.anonymous ? 'true' : 'false');
  f.set('ref', ref);
  if (r.photo) f.set('photo', r.photo, 'photo.jpg');
  return f;
}

/** The platform answered, and will not take this report however often it is sent. */
function refused(e: unknown): e is ApiError {
  return e instanceof ApiError && e.status >= 400 && e.status < 500 && ![401, 408, 429].includes(e.status);
}

/** Send now; when there is no network (or the answer is lost), keep it for later. The case, or
 *  'queued'. A refusal by the platform is thrown (to be shown). */
export async function send(r: Report, by: string): Promise<{ id: number } | 'queued'> {
  const ref = newRef();
  if (navigator.onLine) {
    try {
      return await api<{ id: number }>('/mobile/reports', { method: 'POST', body: form(r, ref) });
    } catch (e) {
      // the platform answered with a refusal, a lapsed session or its rate limit: say so (a
      // report held back by the rate limit is not queued behind the person's back)
      if (e instanceof ApiError && e.status < 500) throw e;
      // no answer (offline, or lost on the way back) or a server error: kept, with the same ref
    }
  }
  const kept: Kept = { ...r, ref, by };
  await tx('readwrite', (s) => s.add(kept));
  return 'queued';
}

/** Reports kept for `by`. */
export async function waiting(by: string): Promise<number> {
  try {
    const all = (await tx('readonly', (s) => s.getAll())) as Kept[];
    return all.filter((r) => mine(r, by)).length;
  } catch {
    return 0;
  }
}

/** Kept for `by` (a report kept by an older version of the app has no `by`: the phone's user then). */
function mine(r: Kept, by: string): boolean {
  return !r.by || r.by === by;
}

let running: Promise<Flushed> | null = null;

/** Send what `by` kept, oldest first; stops at the first that cannot be sent now. */
export function flush(by: string): Promise<Flushed> {
  // A flush asked for while one runs joins it: its reports are being sent already.
  if (running) return running;
  const p = locked(by).finally(() => {
    running = null;
  });
  running = p;
  return p;
}

/** One drain at a time across the app's tabs too (where the browser has the Web Locks API). */
async function locked(by: string): Promise<Flushed> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return drain(by);
  return await locks.request('xl-mobile-flush', () => drain(by));
}

async function drain(by: string): Promise<Flushed> {
  const out: Flushed = { sent: 0, refused: [] };
  const keys = (await tx('readonly', (s) => s.getAllKeys())) as IDBValidKey[];
  for (const k of keys) {
    const r = (await tx('readonly', (s) => s.get(k))) as Kept | undefined;
    if (!r || !mine(r, by)) continue;
    if (!r.ref || !r.by) {
      // kept by an older version of the app: give it its ref (and reporter) before the first try
      r.ref = r.ref || newRef();
      r.by = by;
      await tx('readwrite', (s) => s.put(r, k));
    }
    try {
      await api('/mobile/reports', { method: 'POST', body: form(r, r.ref) });
      out.sent += 1;
    } catch (e) {
      if (!refused(e)) break; // no network, a lapsed session, the rate limit, a server error: later
      out.refused.push({ category: r.category, reason: e.message });
    }
    await tx('readwrite', (s) => s.delete(k));
  }
  return out;
}
