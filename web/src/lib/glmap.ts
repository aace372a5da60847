// The console's map engine, one piece of code for every map (the map page, the incident queue's):
// MapLibre GL JS (WebGL) with a style built here, nothing fetched from the Internet (no glyphs,
// no sprites: no text is drawn by the GL layers; names show in HTML tooltips and labels). The
// basemap is the platform's own MBTiles (vector tiles styled below, or raster images), fetched
// with the login, or a city GIS tile URL (raster).

import { Map as GLMap, setWorkerUrl, type IControl, type LayerSpecification, type RequestParameters, type SourceSpecification, type StyleSpecification } from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';
import { getToken } from '../api/client';
import type { ConsoleConfig } from './basemap';

// the bundle is not next to MapLibre's worker file: tell it where Vite put it
setWorkerUrl(workerUrl);

export { GLMap };

/** Whether this browser can draw WebGL at all (headless browsers without a software renderer cannot). */
export function webglAvailable(): boolean {
  try {
    const c = document.createElement('canvas');
    return !!(c.getContext('webgl2') || c.getContext('webgl'));
  } catch {
    return false;
  }
}

/** The basemap's colours (the console's dark theme). The e2e test looks for water and roads. */
export const BASEMAP_COLORS = {
  background: '#151c27',
  urban: '#1e2633',
  park: '#1b3429',
  water: '#1d4f7a',
  arterial: '#5c6a80',
  street: '#3a4454',
  building: '#2d3747',
  buildingSide: '#3b4a63',
  boundary: '#6b5fb0',
};
const C = BASEMAP_COLORS;
declare global {
  interface Window {
    /** The style's colours, for the e2e test that looks for them in the drawn pixels. */
    __xueliangBasemapColors?: typeof BASEMAP_COLORS;
  }
}
window.__xueliangBasemapColors = BASEMAP_COLORS;

// OpenMapTiles' schema (what tilemaker writes from OpenStreetMap, and the demo's generator):
// one style serves the demo city and a province's basemap alike.
const MAJOR = ['motorway', 'trunk', 'primary', 'secondary', 'tertiary'];
const HEIGHT = ['coalesce', ['get', 'render_height'], ['get', 'height'], 10] as unknown as number;
const MIN_HEIGHT = ['coalesce', ['get', 'render_min_height'], ['get', 'min_height'], 0] as unknown as number;
/** The layers drawn only in the tilted view, and those drawn only flat. */
export const TILTED_LAYERS = ['building-3d'];
export const FLAT_LAYERS = ['building'];

function vectorLayers(): LayerSpecification[] {
  const s = { source: 'basemap' } as const;
  const width = (z10: number, z16: number) => ['interpolate', ['exponential', 1.6], ['zoom'], 10, z10, 16, z16] as unknown as number;
  return [
    { id: 'landuse', type: 'fill', ...s, 'source-layer': 'landuse', paint: { 'fill-color': C.urban } },
    { id: 'park', type: 'fill', ...s, 'source-layer': 'park', paint: { 'fill-color': C.park } },
    { id: 'landcover', type: 'fill', ...s, 'source-layer': 'landcover', filter: ['in', ['get', 'class'], ['literal', ['grass', 'wood', 'farmland']]], paint: { 'fill-color': C.park, 'fill-opacity': 0.6 } },
    { id: 'water', type: 'fill', ...s, 'source-layer': 'water', paint: { 'fill-color': C.water } },
    { id: 'waterway', type: 'line', ...s, 'source-layer': 'waterway', paint: { 'line-color': C.water, 'line-width': width(1, 4) } },
    { id: 'road-minor', type: 'line', ...s, 'source-layer': 'transportation', filter: ['!', ['in', ['get', 'class'], ['literal', MAJOR]]], minzoom: 12, layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': C.street, 'line-width': width(0.5, 6) } },
    { id: 'road-major', type: 'line', ...s, 'source-layer': 'transportation', filter: ['in', ['get', 'class'], ['literal', MAJOR]], layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': C.arterial, 'line-width': width(1.2, 14) } },
    { id: 'building', type: 'fill', ...s, 'source-layer': 'building', minzoom: 13, paint: { 'fill-color': C.building, 'fill-outline-color': C.buildingSide } },
    {
      id: 'building-3d', type: 'fill-extrusion', ...s, 'source-layer': 'building', minzoom: 13, layout: { visibility: 'none' },
      paint: { 'fill-extrusion-color': ['interpolate', ['linear'], HEIGHT, 6, C.building, 60, C.buildingSide] as unknown as string, 'fill-extrusion-height': HEIGHT, 'fill-extrusion-base': MIN_HEIGHT, 'fill-extrusion-opacity': 0.9 },
    },
    { id: 'boundary', type: 'line', ...s, 'source-layer': 'boundary', filter: ['<=', ['to-number', ['get', 'admin_level'], 99], 8], paint: { 'line-color': C.boundary, 'line-opacity': 0.35, 'line-width': 1 } },
  ] as LayerSpecification[];
}

/** A tile URL as MapLibre needs it: absolute (the braces of {z}/{x}/{y} left as they are). */
function absolute(url: string): string {
  return url.startsWith('/') ? location.origin + url : url;
}

/** The style: a background, and the basemap the console config names (none: the background only). */
export function basemapStyle(cfg: ConsoleConfig): StyleSpecification {
  const sources: Record<string, SourceSpecification> = {};
  const layers: LayerSpecification[] = [{ id: 'background', type: 'background', paint: { 'background-color': C.background } }];
  if (cfg.tile_url) {
    const common = {
      tiles: [absolute(cfg.tile_url)],
      attribution: cfg.tile_attribution ?? '',
      ...(cfg.tile_auth ? { minzoom: cfg.tile_min_zoom ?? 0, maxzoom: cfg.tile_max_zoom ?? 14, ...(cfg.tile_bounds ? { bounds: cfg.tile_bounds } : {}) } : { maxzoom: cfg.tile_max_zoom ?? 19 }),
    };
    if (cfg.tile_vector) {
      sources.basemap = { type: 'vector', ...common };
      layers.push(...vectorLayers());
    } else {
      sources.basemap = { type: 'raster', tileSize: 256, ...common };
      layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
    }
  }
  return { version: 8, sources, layers };
}

/** The login on the platform's own requests (tiles): MapLibre fetches them, not an <img>. */
export function authRequest(url: string): RequestParameters {
  const token = getToken();
  if (token && url.startsWith(location.origin + '/api/')) return { url, headers: { Authorization: `Bearer ${token}` } };
  return { url };
}

/** A button between the flat map and the tilted 3D view of buildings (the seeds' 三维). */
export class TiltControl implements IControl {
  private el?: HTMLDivElement;
  constructor(private readonly title: string) {}

  onAdd(map: GLMap): HTMLElement {
    const el = document.createElement('div');
    el.className = 'maplibregl-ctrl maplibregl-ctrl-group';
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'map-tilt';
    b.textContent = '3D';
    b.title = this.title;
    b.setAttribute('aria-label', this.title);
    b.dataset.testid = 'map-tilt';
    b.addEventListener('click', () => setTilted(map, map.getPitch() < 10));
    el.appendChild(b);
    map.on('pitchend', () => b.classList.toggle('on', map.getPitch() >= 10));
    this.el = el;
    return el;
  }

  onRemove(): void {
    this.el?.remove();
  }
}

/** Tilt (buildings extruded from their height) or look straight down (buildings flat: cheaper). */
export function setTilted(map: GLMap, tilted: boolean): void {
  const show = (ids: string[], on: boolean) => {
    for (const id of ids) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  };
  show(TILTED_LAYERS, tilted);
  show(FLAT_LAYERS, !tilted);
  if (tilted) map.easeTo({ pitch: 60, bearing: -20, zoom: Math.max(map.getZoom(), 15), duration: 600 });
  else map.easeTo({ pitch: 0, bearing: 0, duration: 600 });
}

/** Set a GeoJSON source's data (the source made on first use). */
export function setGeoJSON(map: GLMap, id: string, data: GeoJSON.FeatureCollection): void {
  const src = map.getSource(id) as { setData?: (d: GeoJSON.FeatureCollection) => void } | undefined;
  if (src?.setData) src.setData(data);
  else map.addSource(id, { type: 'geojson', data });
}

export function featureCollection(features: GeoJSON.Feature[]): GeoJSON.FeatureCollection {
  return { type: 'FeatureCollection', features };
}

/** Metres per pixel at zoom 0 on the equator (512-pixel tiles, MapLibre's). */
const MPP0 = 78271.517;

/** A circle-radius expression of ``metres`` (a feature property) at latitude ``lat``, at every zoom. */
export function metresRadius(prop: string, lat: number): unknown {
  const k = MPP0 * Math.cos((lat * Math.PI) / 180);
  return ['interpolate', ['exponential', 2], ['zoom'], 0, ['/', ['get', prop], k], 22, ['/', ['get', prop], k / 2 ** 22]];
}

/** Show or hide layers. */
export function setVisible(map: GLMap, ids: string[], on: boolean): void {
  for (const id of ids) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
}

/** The nearest of ``items`` to a screen point within ``px`` pixels (a click next to a small marker). */
export function nearestOnScreen<T>(map: GLMap, point: { x: number; y: number }, items: T[], lngLat: (t: T) => [number, number] | null, px: number): T | null {
  let best: T | null = null;
  let bestD = px;
  for (const it of items) {
    const ll = lngLat(it);
    if (!ll) continue;
    const p = map.project(ll);
    const d = Math.hypot(p.x - point.x, p.y - point.y);
    if (d <= bestD) {
      best = it;
      bestD = d;
    }
  }
  return best;
}
