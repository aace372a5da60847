// Names under the pointer: an HTML tooltip over the map's GL layers (the style draws no text:
// no glyphs are fetched). Each feature carries its text in the ``tip`` property, or ``text``
// makes it from the feature.

import { Popup, type MapGeoJSONFeature } from 'maplibre-gl';
import type { GLMap } from './glmap';

/** Show a tooltip over features of ``layers``; returns the clean-up. */
export function hoverTips(map: GLMap, layers: string[], text: (f: MapGeoJSONFeature) => string | null = (f) => (f.properties?.tip as string) ?? null): () => void {
  const tip = new Popup({ closeButton: false, closeOnClick: false, offset: 10, className: 'map-tip', maxWidth: '320px' });
  let frame = 0;
  let last: { x: number; y: number } | null = null;
  const move = (e: { point: { x: number; y: number } }) => {
    last = e.point;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (!last) return;
      const present = layers.filter((id) => map.getLayer(id));
      const f = present.length ? map.queryRenderedFeatures([last.x, last.y], { layers: present })[0] : undefined;
      const s = f ? text(f) : null;
      map.getCanvas().style.cursor = f ? 'pointer' : '';
      if (!f || !s) {
        tip.remove();
        return;
      }
      const g = f.geometry;
      const at = g.type === 'Point' ? (g.coordinates as [number, number]) : map.unproject([last.x, last.y]).toArray();
      tip.setLngLat(at).setText(s);
      if (!tip.isOpen()) tip.addTo(map);
    });
  };
  const out = () => {
    last = null;
    tip.remove();
  };
  map.on('mousemove', move);
  map.on('mouseout', out);
  return () => {
    map.off('mousemove', move);
    map.off('mouseout', out);
    cancelAnimationFrame(frame);
    tip.remove();
  };
}
