// Division boundaries (GET /api/v1/map/divisions): the outlines an administrator loaded, drawn
// as SVG in the 'bounds' pane, asked again per zoom band (the platform simplifies them for it).

import L from 'leaflet';
import { api } from '../api/client';

interface DivisionFeature {
  type: 'Feature';
  properties: { code: string; name: string; level: string; parent_code: string | null };
  geometry: GeoJSON.Polygon | GeoJSON.MultiPolygon;
}
export interface DivisionCollection {
  type: 'FeatureCollection';
  features: DivisionFeature[];
}

const STYLE: Record<string, L.PathOptions> = {
  province: { color: '#c4b5fd', weight: 3 },
  city: { color: '#c4b5fd', weight: 2.5 },
  county: { color: '#a78bfa', weight: 2 },
  township: { color: '#818cf8', weight: 1.2, dashArray: '6 4' },
  village: { color: '#64748b', weight: 1, dashArray: '3 4' },
  grid: { color: '#475569', weight: 0.8, dashArray: '2 3' },
};

/** The zoom the outlines are asked for: bands of two zooms, so a pan or a half step asks nothing. */
export function zoomBand(z: number): number {
  return Math.max(4, Math.min(16, Math.floor(z / 2) * 2));
}

export function fetchDivisions(band: number): Promise<DivisionCollection> {
  return api<DivisionCollection>(`/map/divisions?zoom=${band}`);
}

/** The finest level worth a label at a zoom: counties far out, townships closer, then villages. */
function labelLevel(z: number): string {
  return z < 12 ? 'county' : z < 14 ? 'township' : 'village';
}

export function drawDivisions(group: L.LayerGroup, fc: DivisionCollection, zoom: number, renderer: L.Renderer): number {
  group.clearLayers();
  const lab = labelLevel(zoom);
  // coarse levels last, so their heavier lines stay on top
  const order = ['grid', 'village', 'township', 'county', 'city', 'province'];
  const feats = fc.features.slice().sort((a, b) => order.indexOf(a.properties.level) - order.indexOf(b.properties.level));
  for (const f of feats) {
    const style = STYLE[f.properties.level] ?? STYLE.village;
    const layer = L.geoJSON(f as GeoJSON.Feature, {
      renderer,
      interactive: false,
      style: () => ({ ...style, fill: false, opacity: 0.9, className: `division-boundary level-${f.properties.level}` }),
    } as L.GeoJSONOptions);
    if (f.properties.level === lab) layer.bindTooltip(f.properties.name || f.properties.code, { permanent: true, direction: 'center', className: 'div-label' });
    group.addLayer(layer);
  }
  return feats.length;
}
