// The video wall and patrols (轮巡) as module state: the wall keeps playing its layout when the
// operator looks at the map, and a patrol keeps cycling.
//
// Patrols are kept by the platform (GET/POST/PUT/DELETE /patrols): the next duty shift finds
// them, and shared ones are seen by the owner's department.

import { api } from '../api/client';
import type { ChannelRef } from '../api/types';
import { createStore, persistedStore } from './store';

export type Layout = 1 | 4 | 9 | 16;
export const LAYOUTS: Layout[] = [1, 4, 9, 16];

export interface Tile {
  channel: ChannelRef | null;
  mode: 'live' | 'playback';
  /** playback: the stream name from POST /channels/{id}/playback and the time it starts at. */
  stream?: string;
  from?: string;
  to?: string;
}

export interface WallState {
  layout: Layout;
  tiles: Tile[];
  selected: number;
}

const empty = (): Tile => ({ channel: null, mode: 'live' });

export const wall = persistedStore<WallState>('xl.wall', {
  layout: 4,
  tiles: Array.from({ length: 16 }, empty),
  selected: 0,
});
// playback streams do not survive a reload
wall.set((w) => ({ ...w, tiles: normalise(w.tiles).map((t) => (t.mode === 'playback' ? { channel: t.channel, mode: 'live' } : t)) }));

function normalise(tiles: Tile[] | undefined): Tile[] {
  const out = (tiles ?? []).slice(0, 16);
  while (out.length < 16) out.push(empty());
  return out;
}

export function setLayout(layout: Layout): void {
  wall.set((w) => ({ ...w, layout, selected: Math.min(w.selected, layout - 1) }));
}

export function setTile(i: number, patch: Partial<Tile> | null): void {
  wall.set((w) => {
    const tiles = w.tiles.slice();
    tiles[i] = patch === null ? empty() : { ...tiles[i], ...patch };
    return { ...w, tiles };
  });
}

export function selectTile(i: number): void {
  wall.set((w) => (w.selected === i ? w : { ...w, selected: i }));
}

/** Put a channel on the wall: the selected tile if empty, else the first empty one, else the selected. */
export function openOnWall(c: ChannelRef, at?: number): number {
  const w = wall.get();
  let i = at ?? -1;
  if (i < 0) {
    if (!w.tiles[w.selected]?.channel) i = w.selected;
    else {
      i = w.tiles.slice(0, w.layout).findIndex((t) => !t.channel);
      if (i < 0) i = w.selected;
    }
  }
  setTile(i, { channel: c, mode: 'live', stream: undefined, from: undefined, to: undefined });
  selectTile(i);
  return i;
}

export function clearWall(): void {
  wall.set((w) => ({ ...w, tiles: Array.from({ length: 16 }, empty) }));
}

// ---- patrols ---------------------------------------------------------------------------------
export interface Patrol {
  id: number | null; // null until saved
  name: string;
  layout: Layout;
  interval: number; // seconds per page
  channels: ChannelRef[];
  /** Seen by everyone of the owner's department. */
  shared: boolean;
  /** Mine to change (else another user's shared patrol: run it, not edit it). */
  mine: boolean;
  /** Cameras of it outside my scope (not shown, not played). */
  hidden: number;
}

export const patrols = createStore<Patrol[]>([]);
export const patrolsError = createStore<unknown>(null);

const LOCAL_KEY = 'xl.patrols'; // where patrols lived before the platform kept them

export async function loadPatrols(): Promise<void> {
  try {
    await moveLocalPatrols();
    patrols.set(await api<Patrol[]>('/patrols'));
    patrolsError.set(null);
  } catch (e) {
    patrolsError.set(e);
  }
}

/** Patrols this browser kept before: handed to the platform once (as private ones). */
async function moveLocalPatrols(): Promise<void> {
  const raw = localStorage.getItem(LOCAL_KEY);
  if (!raw) return;
  let old: { name?: string; layout?: number; interval?: number; channels?: ChannelRef[] }[] = [];
  try {
    old = JSON.parse(raw);
  } catch {
    /* unreadable: nothing to move */
  }
  const left = [];
  for (const p of Array.isArray(old) ? old : []) {
    try {
      await api('/patrols', { method: 'POST', body: { name: p.name || '轮巡', layout: p.layout ?? 4, interval: Math.max(5, p.interval ?? 30), channel_ids: (p.channels ?? []).map((c) => c.id), shared: false } });
    } catch {
      left.push(p); // e.g. a camera no longer in scope: kept here, tried again next time
    }
  }
  if (left.length) localStorage.setItem(LOCAL_KEY, JSON.stringify(left));
  else localStorage.removeItem(LOCAL_KEY);
}

export interface PatrolRun {
  patrol: Patrol;
  page: number;
  pages: number;
  paused: boolean;
  nextAt: number; // epoch ms of the next page
}

export const patrolRun = createStore<PatrolRun | null>(null);
let timer: number | undefined;

function showPage(p: Patrol, page: number): void {
  const size = p.layout;
  const slice = p.channels.slice(page * size, page * size + size);
  wall.set((w) => {
    const tiles = w.tiles.slice();
    for (let i = 0; i < size; i++) tiles[i] = slice[i] ? { channel: slice[i], mode: 'live' } : empty();
    return { ...w, layout: p.layout, tiles };
  });
}

function schedule(): void {
  window.clearTimeout(timer);
  const r = patrolRun.get();
  if (!r || r.paused) return;
  timer = window.setTimeout(() => stepPatrol(1), Math.max(0, r.nextAt - Date.now()));
}

export function startPatrol(p: Patrol): void {
  const pages = Math.max(1, Math.ceil(p.channels.length / p.layout));
  patrolRun.set({ patrol: p, page: 0, pages, paused: false, nextAt: Date.now() + p.interval * 1000 });
  showPage(p, 0);
  schedule();
}

export function stepPatrol(delta: number): void {
  const r = patrolRun.get();
  if (!r) return;
  const page = (r.page + delta + r.pages) % r.pages;
  patrolRun.set({ ...r, page, nextAt: Date.now() + r.patrol.interval * 1000 });
  showPage(r.patrol, page);
  schedule();
}

export function pausePatrol(paused: boolean): void {
  const r = patrolRun.get();
  if (!r) return;
  patrolRun.set({ ...r, paused, nextAt: Date.now() + r.patrol.interval * 1000 });
  schedule();
}

export function stopPatrol(): void {
  window.clearTimeout(timer);
  patrolRun.set(null);
}

export async function savePatrol(p: Patrol): Promise<void> {
  const body = { name: p.name, layout: p.layout, interval: p.interval, channel_ids: p.channels.map((c) => c.id), shared: p.shared };
  await api(p.id === null ? '/patrols' : `/patrols/${p.id}`, { method: p.id === null ? 'POST' : 'PUT', body });
  await loadPatrols();
}

export async function deletePatrol(id: number): Promise<void> {
  await api(`/patrols/${id}`, { method: 'DELETE' });
  if (patrolRun.get()?.patrol.id === id) stopPatrol();
  await loadPatrols();
}
