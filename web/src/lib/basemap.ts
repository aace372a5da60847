// The console's basemap, one piece of code for every map (the map page, the incident queue's):
// GET /console/config says where the tiles come from (the platform's own MBTiles, fetched with
// the login, or a city GIS tile URL); a browser may set its own URL (底图, localStorage).

import L from 'leaflet';
import { api } from '../api/client';
import { authTileLayer } from './authTiles';

export interface ConsoleConfig {
  tile_url?: string | null;
  tile_attribution?: string | null;
  tile_max_zoom?: number | null;
  tile_min_zoom?: number | null;
  /** [west, south, east, north] where the platform's basemap has tiles. */
  tile_bounds?: [number, number, number, number] | null;
  /** The platform's own basemap: tiles need the login (fetched with the token). */
  tile_auth?: boolean | null;
  center?: [number, number] | null; // [lon, lat]
  zoom?: number | null;
}

let configCache: ConsoleConfig | null = null;

export async function consoleConfig(): Promise<ConsoleConfig> {
  if (configCache) return configCache;
  try {
    configCache = await api<ConsoleConfig>('/console/config');
  } catch {
    configCache = {};
  }
  const local = localStorage.getItem('xl.tileUrl');
  if (local) configCache = { ...configCache, tile_url: local };
  return configCache;
}

/** Forget the cached config (the browser's own tile URL changed). */
export function resetConsoleConfig(): void {
  configCache = null;
}

/** The tile layer the config names, or null without one. */
export function basemapLayer(cfg: ConsoleConfig): L.TileLayer | null {
  if (!cfg.tile_url) return null;
  return cfg.tile_auth
    ? // the platform's basemap: drawn to its deepest zoom, enlarged beyond it (not below its
      // shallowest: scaling those down would ask for thousands of tiles), and only where it has tiles
      authTileLayer(cfg.tile_url, {
        maxZoom: 19,
        maxNativeZoom: cfg.tile_max_zoom ?? 18,
        minZoom: cfg.tile_min_zoom ?? 0,
        bounds: cfg.tile_bounds ? L.latLngBounds([cfg.tile_bounds[1], cfg.tile_bounds[0]], [cfg.tile_bounds[3], cfg.tile_bounds[2]]) : undefined,
        attribution: cfg.tile_attribution ?? '',
      })
    : L.tileLayer(cfg.tile_url, { maxZoom: cfg.tile_max_zoom ?? 19, attribution: cfg.tile_attribution ?? '' });
}
