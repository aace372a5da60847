// Basemap tiles from the platform (GET /api/v1/map/tiles/...): like any console data they need
// the login, which an <img src> cannot send. Each tile is fetched with the bearer token and shown
// from a blob URL; the browser's HTTP cache still applies (the platform sends ETag and max-age).

import L from 'leaflet';
import { getToken } from '../api/client';

type TileImg = HTMLImageElement & { _abort?: AbortController };

const AuthTileLayer = L.TileLayer.extend({
  // Tiles are laid out in the next frame, not inside the move: the cameras' clusters redraw
  // synchronously on every move (100,000 points), and creating some forty tiles and their
  // requests in the same call would double its time (bench/console.py). Moves within a frame
  // make one layout.
  _update(this: L.TileLayer & { _frame?: number; _map?: L.Map }) {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      if (this._map) (L.TileLayer.prototype as unknown as { _update: () => void })._update.call(this);
    });
  },
  createTile(this: L.TileLayer, coords: L.Coords, done: L.DoneCallback): HTMLElement {
    const img = document.createElement('img') as TileImg;
    img.alt = '';
    img.setAttribute('role', 'presentation');
    const ctl = new AbortController();
    img._abort = ctl;
    const token = getToken();
    fetch(this.getTileUrl(coords), { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: ctl.signal })
      .then(async (r) => {
        if (!r.ok) throw new Error(`tile ${r.status}`);
        const url = URL.createObjectURL(await r.blob());
        img.onload = () => {
          URL.revokeObjectURL(url);
          done(undefined, img);
        };
        img.onerror = () => {
          URL.revokeObjectURL(url);
          done(new Error('tile image'), img);
        };
        img.src = url;
      })
      .catch((e: unknown) => {
        // a tile the basemap lacks (404) or one left behind by a move: the map goes on without it
        if (!ctl.signal.aborted) done(e instanceof Error ? e : new Error(String(e)), img);
      });
    return img;
  },
});

/** A tile layer whose tiles are fetched with the user's token (the platform's own basemap). */
export function authTileLayer(url: string, options: L.TileLayerOptions): L.TileLayer {
  const layer = new (AuthTileLayer as unknown as new (u: string, o: L.TileLayerOptions) => L.TileLayer)(url, options);
  // a tile scrolled away before it arrived: stop fetching it
  layer.on('tileunload', (e: L.TileEvent) => (e.tile as TileImg)._abort?.abort());
  return layer;
}
