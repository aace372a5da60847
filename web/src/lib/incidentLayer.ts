// The incident centre's open cases on the map (GET /api/v1/incidents): a marker per case with a
// place, coloured by priority, drawn over the cameras. The newest 500: the queue's view, not
// a year's archive.

import L from 'leaflet';
import { api } from '../api/client';

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

export async function fetchIncidents(): Promise<IncidentPoint[]> {
  const r = await api<{ items: IncidentPoint[] }>('/incidents?limit=500');
  return r.items ?? [];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Draw the open cases with a place; returns how many were drawn. ``onClick`` makes a marker
 * select its case; the ``selected`` one is drawn larger. */
export function drawIncidents(group: L.LayerGroup, list: IncidentPoint[],
                              opts: { onClick?: (id: number) => void; selected?: number | null } = {}): number {
  group.clearLayers();
  let n = 0;
  for (const i of list) {
    if (DONE.has(i.status) || i.longitude === null || i.latitude === null) continue;
    const color = PRIORITY_COLOR[i.priority] ?? PRIORITY_COLOR.normal;
    const chosen = opts.selected === i.id;
    const marker = L.circleMarker([i.latitude, i.longitude], { pane: 'incidents', radius: chosen ? 12 : 8, color: i.flagged || chosen ? '#f43f5e' : '#fff', weight: chosen ? 3 : 2, fillColor: color, fillOpacity: 0.95 })
      .bindTooltip(`#${i.id} ${escapeHtml(i.category)} · ${escapeHtml(i.description.slice(0, 60))}`, { direction: 'top' })
      .addTo(group);
    if (opts.onClick) marker.on('click', () => opts.onClick!(i.id));
    n++;
  }
  return n;
}
