import { useSyncExternalStore } from 'react';

/** A tiny observable value (module-level state shared by pages: session, wall, points). */
export interface Store<T> {
  get(): T;
  set(v: T | ((prev: T) => T)): void;
  subscribe(f: () => void): () => void;
}

export function createStore<T>(initial: T): Store<T> {
  let state = initial;
  const subs = new Set<() => void>();
  return {
    get: () => state,
    set(v) {
      const next = typeof v === 'function' ? (v as (p: T) => T)(state) : v;
      if (next === state) return;
      state = next;
      subs.forEach((f) => f());
    },
    subscribe(f) {
      subs.add(f);
      return () => {
        subs.delete(f);
      };
    },
  };
}

export function useStore<T>(s: Store<T>): T {
  return useSyncExternalStore(s.subscribe, s.get, s.get);
}

/** A store persisted in localStorage under `key`. */
export function persistedStore<T>(key: string, initial: T): Store<T> {
  let start = initial;
  try {
    const s = localStorage.getItem(key);
    if (s) {
      const v = JSON.parse(s);
      start = Array.isArray(initial) || typeof initial !== 'object' ? (v as T) : ({ ...initial, ...v } as T);
    }
  } catch {
    /* ignore a corrupt entry */
  }
  const st = createStore<T>(start);
  st.subscribe(() => {
    try {
      localStorage.setItem(key, JSON.stringify(st.get()));
    } catch {
      /* quota: keep in memory */
    }
  });
  return st;
}
