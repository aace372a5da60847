// Clusters and camera points drawn on one canvas: a Leaflet canvas renderer whose drawing is
// ours. Leaflet positions, resizes and zoom-animates the canvas; a redraw of a thousand
// clusters is a few milliseconds (DOM markers cost a hundred). Hit testing is by distance.
import L from 'leaflet';

export interface MapItem {
  lat: number;
  lng: number;
  /** radius in pixels */
  r: number;
  cluster: boolean;
  /** clusters: count and status shares; points: index into the shown points */
  n: number;
  on: number;
  off: number;
  clusterId?: number;
  fill?: string;
  stroke?: string;
  strokeWidth?: number;
  /** layer-point position, set while drawing */
  x?: number;
  y?: number;
}

const GREEN = '#22c55e';
const RED = '#ef4444';
const GREY = '#64748b';

function label(n: number): string {
  return n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

export interface ItemLayer extends L.Layer {
  setItems(items: MapItem[]): void;
  hit(containerPoint: L.Point): MapItem | null;
}

interface CanvasInternals {
  _ctx: CanvasRenderingContext2D;
  _map: L.Map;
  _items: MapItem[];
  _redraw(): void;
  _container?: HTMLCanvasElement;
}

const Impl = (L.Canvas as unknown as { extend(o: object): new (o?: L.RendererOptions) => ItemLayer }).extend({
  setItems(this: CanvasInternals, items: MapItem[]) {
    this._items = items;
    if (this._map && this._ctx) this._redraw();
  },

  hit(this: CanvasInternals, cp: L.Point): MapItem | null {
    if (!this._map || !this._items) return null;
    const lp = this._map.containerPointToLayerPoint(cp);
    let best: MapItem | null = null;
    let bestD = Infinity;
    // points are drawn last, so they win over the clusters beneath
    for (let i = this._items.length - 1; i >= 0; i--) {
      const it = this._items[i];
      if (it.x === undefined || it.y === undefined) continue;
      const d = Math.hypot(it.x - lp.x, it.y - lp.y);
      if (d <= it.r + 3 && d < bestD) {
        best = it;
        bestD = d;
        if (!it.cluster) break;
      }
    }
    return best;
  },

  _draw(this: CanvasInternals) {
    const ctx = this._ctx;
    const map = this._map;
    if (!ctx || !map || !this._items) return;
    ctx.save();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = '600 11.5px system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif';
    for (const it of this._items) {
      const p = map.latLngToLayerPoint([it.lat, it.lng]);
      it.x = p.x;
      it.y = p.y;
      if (it.cluster) {
        // status ring: online, offline, unknown
        const total = Math.max(1, it.n);
        const parts: [number, string][] = [
          [it.on / total, GREEN],
          [it.off / total, RED],
          [(total - it.on - it.off) / total, GREY],
        ];
        let a = -Math.PI / 2;
        ctx.lineWidth = 5;
        for (const [share, color] of parts) {
          if (share <= 0) continue;
          ctx.beginPath();
          ctx.strokeStyle = color;
          ctx.arc(p.x, p.y, it.r - 2.5, a, a + share * Math.PI * 2);
          ctx.stroke();
          a += share * Math.PI * 2;
        }
        ctx.beginPath();
        ctx.fillStyle = '#0c1628';
        ctx.arc(p.x, p.y, it.r - 5, 0, Math.PI * 2);
        ctx.fill();
        ctx.fillStyle = '#f1f5f9';
        ctx.fillText(label(it.n), p.x, p.y + 0.5);
      } else {
        ctx.beginPath();
        ctx.arc(p.x, p.y, it.r, 0, Math.PI * 2);
        ctx.globalAlpha = 0.92;
        ctx.fillStyle = it.fill ?? GREY;
        ctx.fill();
        ctx.globalAlpha = 1;
        if (it.stroke && it.stroke !== 'transparent') {
          ctx.lineWidth = it.strokeWidth ?? 1.5;
          ctx.strokeStyle = it.stroke;
          ctx.stroke();
        }
      }
    }
    ctx.restore();
  },
});

export function itemLayer(): ItemLayer {
  return new Impl({ padding: 0.2 });
}
