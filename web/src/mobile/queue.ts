// Reports made offline: kept in IndexedDB (the photo as a Blob) and sent, oldest first, when
// the phone is back online. A report the server refuses (4xx) is dropped, not retried forever.
import { ApiError, api } from '../api/client';

export interface Report {
  category: string;
  description: string;
  longitude: number;
  latitude: number;
  anonymous: boolean;
  photo: Blob | null;
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
  return new Promise((resolve, reject) => {
    const req = f(db.transaction(STORE, mode).objectStore(STORE));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function form(r: Report): FormData {
  const f = new FormData();
  f.set('category', r.category);
  f.set('description', r.description);
  f.set('longitude', String(r.longitude));
  f.set('latitude', String(r.latitude));
  f.set('anonymous', r.anonymous ? 'true' : 'false');
  if (r.photo) f.set('photo', r.photo, 'photo.jpg');
  return f;
}

/** Send now; when there is no network, keep it for later. 'sent' with the case, or 'queued'. */
export async function send(r: Report): Promise<{ id: number } | 'queued'> {
  if (navigator.onLine) {
    try {
      return await api<{ id: number }>('/mobile/reports', { method: 'POST', body: form(r) });
    } catch (e) {
      if (e instanceof ApiError) throw e; // the server answered: say what it said
    }
  }
  await tx('readwrite', (s) => s.add(r));
  return 'queued';
}

export async function waiting(): Promise<number> {
  try {
    return await tx('readonly', (s) => s.count());
  } catch {
    return 0;
  }
}

/** Send what was kept; the number sent. */
export async function flush(): Promise<number> {
  let sent = 0;
  const keys = (await tx('readonly', (s) => s.getAllKeys())) as IDBValidKey[];
  for (const k of keys) {
    const r = (await tx('readonly', (s) => s.get(k))) as Report | undefined;
    if (!r) continue;
    try {
      await api('/mobile/reports', { method: 'POST', body: form(r) });
      sent += 1;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 429 || e.status >= 500) break; // try again later
    }
    await tx('readwrite', (s) => s.delete(k));
  }
  return sent;
}
