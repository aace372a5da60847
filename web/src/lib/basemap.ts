// The console's basemap configuration, one for every map (the map page, the incident queue's):
// GET /console/config says where the tiles come from (the platform's own MBTiles, vector or
// raster, fetched with the login, or a city GIS tile URL); a browser may set its own URL (底图,
// localStorage). lib/glmap.ts builds the map's style from it.

import { api } from '../api/client';

export interface ConsoleConfig {
  tile_url?: string | null;
  tile_attribution?: string | null;
  tile_max_zoom?: number | null;
  tile_min_zoom?: number | null;
  /** [west, south, east, north] where the platform's basemap has tiles. */
  tile_bounds?: [number, number, number, number] | null;
  /** The platform's own basemap: tiles need the login (fetched with the token). */
  tile_auth?: boolean | null;
  /** The platform's basemap is vector tiles (MVT): the console styles them (lib/glmap.ts). */
  tile_vector?: boolean | null;
  center?: [number, number] | null; // [lon, lat]
  zoom?: number | null;
  /** The city's day starts at UTC+this (health.utc_offset_hours): rates and reports count its days. */
  utc_offset_hours?: number | null;
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
  if (local) configCache = { ...configCache, tile_url: local, tile_auth: false, tile_vector: false, tile_bounds: null }; // a raster URL of the browser's own
  return configCache;
}

/** Forget the cached config (the browser's own tile URL changed). */
export function resetConsoleConfig(): void {
  configCache = null;
}
