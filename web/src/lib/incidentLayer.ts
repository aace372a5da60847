// The incident centre's open cases on the map (GET /api/v1/incidents): a marker per case with a
// place, coloured by priority, drawn over the cameras. The newest 500: the queue's view, not
// a year's archive. One layer for the map page and the incident queue's map.

import { api } from '../api/client';
import { featureCollection, setGeoJSON, type GLMap } from './glmap';

export interface IncidentPoint {
  id: number;
  category: string;
  priority: string;
  status: string;
  description: string;
  longitude: number | null;
  latitude: number | null;
  flagged?: boolean;
}

const PRIORITY_COLOR: Record<string, string> = { urgent: '#ef4444', high: '#f97316', normal: '#eab308', low: '#a3a3a3' };
const DONE = new Set(['closed', 'merged']);
export const INCIDENT_LAYERS = ['incidents'];

export async function fetchIncidents(): Promise<IncidentPoint[]> {
  const r = await api<{ items: IncidentPoint[] }>('/incidents?limit=500');
  return r.items ?? [];
}

/** The cases the map draws: open ones with a place. */
export function placedOpen(list: IncidentPoint[]): IncidentPoint[] {
  return list.filter((i) => !DONE.has(i.status) && i.longitude !== null && i.latitude !== null);
}

/** The source and layer (on top of what is there). */
export function addIncidentLayer(map: GLMap): void {
  setGeoJSON(map, 'incidents', featureCollection([]));
  map.addLayer({
    id: 'incidents', type: 'circle', source: 'incidents',
    paint: {
      'circle-color': ['get', 'color'],
      'circle-radius': ['case', ['get', 'selected'], 12, 8],
      'circle-stroke-color': ['case', ['any', ['get', 'selected'], ['get', 'flagged']], '#f43f5e', '#ffffff'],
      'circle-stroke-width': ['case', ['get', 'selected'], 3, 2],
      'circle-opacity': 0.95,
    },
  });
}

/** Draw the open cases with a place; returns how many were drawn. The ``selected`` one is larger. */
export function drawIncidents(map: GLMap, list: IncidentPoint[], selected: number | null = null): number {
  const shown = placedOpen(list);
  setGeoJSON(map, 'incidents', featureCollection(shown.map((i) => ({
    type: 'Feature',
    id: i.id,
    properties: { id: i.id, color: PRIORITY_COLOR[i.priority] ?? PRIORITY_COLOR.normal, selected: i.id === selected, flagged: !!i.flagged, tip: `#${i.id} ${i.category} · ${i.description.slice(0, 60)}` },
    geometry: { type: 'Point', coordinates: [i.longitude!, i.latitude!] },
  }))));
  return shown.length;
}
