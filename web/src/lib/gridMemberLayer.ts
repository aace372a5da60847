// Grid members' last positions on the map (GET /api/v1/mobile/positions): who may manage the
// incident centre sees the members of its own division subtree, reported within the last hour.

import L from 'leaflet';
import { api } from '../api/client';

export interface GridPosition {
  username: string;
  department: string | null;
  longitude: number;
  latitude: number;
  accuracy: number | null;
  at: string;
}

export async function fetchGridPositions(): Promise<GridPosition[]> {
  const r = await api<{ items: GridPosition[] }>('/mobile/positions?since_minutes=60');
  return r.items ?? [];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Draw each member's last position (a blue dot, its GPS accuracy as a faint circle); returns how many. */
export function drawGridPositions(group: L.LayerGroup, list: GridPosition[]): number {
  group.clearLayers();
  for (const p of list) {
    if (p.accuracy && p.accuracy > 0 && p.accuracy < 2000) {
      L.circle([p.latitude, p.longitude], { pane: 'incidents', radius: p.accuracy, color: '#3b82f6', weight: 1, fillOpacity: 0.08, interactive: false }).addTo(group);
    }
    const when = new Date(p.at).toLocaleTimeString();
    L.circleMarker([p.latitude, p.longitude], { pane: 'incidents', radius: 6, color: '#fff', weight: 2, fillColor: '#3b82f6', fillOpacity: 1, className: 'grid-member' })
      .bindTooltip(`${escapeHtml(p.username)}${p.department ? ' · ' + escapeHtml(p.department) : ''} · ${escapeHtml(when)}`, { direction: 'top' })
      .addTo(group);
  }
  return list.length;
}
