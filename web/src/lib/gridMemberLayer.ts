// Grid members' last positions on the map (GET /api/v1/mobile/positions): who may manage the
// incident centre sees the members of its own division subtree, reported within the last hour.

import { api } from '../api/client';
import { featureCollection, metresRadius, setGeoJSON, type GLMap } from './glmap';

export interface GridPosition {
  username: string;
  department: string | null;
  longitude: number;
  latitude: number;
  accuracy: number | null;
  at: string;
}

export const MEMBER_LAYERS = ['members-accuracy', 'members'];

export async function fetchGridPositions(): Promise<GridPosition[]> {
  const r = await api<{ items: GridPosition[] }>('/mobile/positions?since_minutes=60');
  return r.items ?? [];
}

/** A blue dot per member, its GPS accuracy as a faint circle of that many metres. */
export function addMemberLayers(map: GLMap, lat: number): void {
  setGeoJSON(map, 'members', featureCollection([]));
  map.addLayer({
    id: 'members-accuracy', type: 'circle', source: 'members', filter: ['all', ['>', ['get', 'accuracy'], 0], ['<', ['get', 'accuracy'], 2000]],
    paint: { 'circle-radius': metresRadius('accuracy', lat) as number, 'circle-color': '#3b82f6', 'circle-opacity': 0.08, 'circle-stroke-color': '#3b82f6', 'circle-stroke-width': 1, 'circle-stroke-opacity': 0.5 },
  });
  map.addLayer({ id: 'members', type: 'circle', source: 'members', paint: { 'circle-radius': 6, 'circle-color': '#3b82f6', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2 } });
}

/** Draw each member's last position; returns how many. */
export function drawGridPositions(map: GLMap, list: GridPosition[]): number {
  setGeoJSON(map, 'members', featureCollection(list.map((p) => ({
    type: 'Feature',
    properties: { accuracy: p.accuracy ?? 0, tip: `${p.username}${p.department ? ' · ' + p.department : ''} · ${new Date(p.at).toLocaleTimeString()}` },
    geometry: { type: 'Point', coordinates: [p.longitude, p.latitude] },
  }))));
  return list.length;
}
