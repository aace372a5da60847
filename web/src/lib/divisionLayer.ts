// Division boundaries (GET /api/v1/map/divisions): the outlines an administrator loaded, drawn
// as lines under the cameras, asked again per zoom band (the platform simplifies them for it).

import { Marker } from 'maplibre-gl';
import { api } from '../api/client';
import { featureCollection, setGeoJSON, type GLMap } from './glmap';

interface DivisionFeature {
  type: 'Feature';
  properties: { code: string; name: string; level: string; parent_code: string | null };
  geometry: GeoJSON.Polygon | GeoJSON.MultiPolygon;
}
export interface DivisionCollection {
  type: 'FeatureCollection';
  features: DivisionFeature[];
}

const COLOR = ['match', ['get', 'level'], 'province', '#c4b5fd', 'city', '#c4b5fd', 'county', '#a78bfa', 'township', '#818cf8', 'village', '#64748b', '#475569'];
const WIDTH = ['match', ['get', 'level'], 'province', 3, 'city', 2.5, 'county', 2, 'township', 1.2, 'village', 1, 0.8];
/** Solid for the coarse levels, dashed for townships, dotted below (dashes cannot vary per feature). */
const STYLES: [string, string[], number[] | null][] = [
  ['div-fine', ['village', 'grid'], [2, 3]],
  ['div-township', ['township'], [5, 3]],
  ['div-coarse', ['county', 'city', 'province'], null],
];
export const DIVISION_LAYERS = STYLES.map(([id]) => id);

/** The zoom the outlines are asked for: bands of two zooms, so a pan or a half step asks nothing. */
export function zoomBand(z: number): number {
  return Math.max(4, Math.min(16, Math.floor(z / 2) * 2));
}

export function fetchDivisions(band: number): Promise<DivisionCollection> {
  return api<DivisionCollection>(`/map/divisions?zoom=${band}`);
}

/** The finest level worth a label at a zoom: counties far out, townships closer, then villages. */
export function labelLevel(z: number): string {
  return z < 12 ? 'county' : z < 14 ? 'township' : 'village';
}

export function addDivisionLayers(map: GLMap): void {
  setGeoJSON(map, 'divisions', featureCollection([]));
  for (const [id, levels, dash] of STYLES) {
    map.addLayer({
      id, type: 'line', source: 'divisions', filter: ['in', ['get', 'level'], ['literal', levels]],
      paint: { 'line-color': COLOR as unknown as string, 'line-width': WIDTH as unknown as number, 'line-opacity': 0.9, ...(dash ? { 'line-dasharray': dash } : {}) },
    });
  }
}

export function drawDivisions(map: GLMap, fc: DivisionCollection): number {
  setGeoJSON(map, 'divisions', fc as GeoJSON.FeatureCollection);
  return fc.features.length;
}

/** Names of divisions as HTML labels (the style draws no text): one per outline, at its box's centre. */
export class DivisionLabels {
  private markers: Marker[] = [];
  constructor(private readonly map: GLMap) {}

  set(items: { name: string; lng: number; lat: number }[]): void {
    this.clear();
    for (const it of items) {
      const el = document.createElement('div');
      el.className = 'div-label';
      el.textContent = it.name;
      this.markers.push(new Marker({ element: el }).setLngLat([it.lng, it.lat]).addTo(this.map));
    }
  }

  clear(): void {
    for (const m of this.markers) m.remove();
    this.markers = [];
  }
}

/** The labels of the loaded outlines at the level worth naming at ``zoom``. */
export function divisionLabels(fc: DivisionCollection, zoom: number): { name: string; lng: number; lat: number }[] {
  const level = labelLevel(zoom);
  const out: { name: string; lng: number; lat: number }[] = [];
  for (const f of fc.features) {
    if (f.properties.level !== level) continue;
    const rings = f.geometry.type === 'Polygon' ? [f.geometry.coordinates[0]] : f.geometry.coordinates.map((p) => p[0]);
    let w = 180, s = 90, e = -180, n = -90;
    for (const r of rings) for (const [x, y] of r) {
      w = Math.min(w, x); e = Math.max(e, x); s = Math.min(s, y); n = Math.max(n, y);
    }
    out.push({ name: f.properties.name || f.properties.code, lng: (w + e) / 2, lat: (s + n) / 2 });
  }
  return out;
}
