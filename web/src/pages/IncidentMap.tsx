// The incident queue's map: the listed cases on the console's basemap (lib/basemap.ts, the same
// as the map page's), a click on a case's marker selects it in the queue, the selected one drawn
// larger and centred.

import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { useEffect, useRef } from 'react';
import { basemapLayer, consoleConfig } from '../lib/basemap';
import { drawIncidents, type IncidentPoint } from '../lib/incidentLayer';

declare global {
  interface Window {
    /** For the tests: how many cases the queue's map drew, and the tiles it loaded. */
    __xueliangQueueMap?: { cases: number; tilesLoaded: number };
    __xueliangQueueLeaflet?: L.Map;
  }
}

export function IncidentMap({ items, selected, onSelect }: { items: IncidentPoint[]; selected: number | null; onSelect: (id: number) => void }) {
  const el = useRef<HTMLDivElement>(null);
  const map = useRef<L.Map | null>(null);
  const group = useRef<L.LayerGroup | null>(null);
  const fitted = useRef(false);
  const stats = useRef({ cases: 0, tilesLoaded: 0 });
  const select = useRef(onSelect);
  select.current = onSelect;

  useEffect(() => {
    if (!el.current) return;
    const m = L.map(el.current, { preferCanvas: true, zoomControl: true, minZoom: 3, maxZoom: 19, attributionControl: true });
    m.attributionControl.setPrefix(false);
    m.createPane('incidents').style.zIndex = '620';
    m.setView([31.85, 117.25], 11);
    group.current = L.layerGroup().addTo(m);
    map.current = m;
    window.__xueliangQueueLeaflet = m;
    void consoleConfig().then((cfg) => {
      const layer = basemapLayer(cfg);
      if (layer && map.current === m) {
        layer.on('tileload', () => {
          stats.current.tilesLoaded += 1;
          window.__xueliangQueueMap = { ...stats.current };
        });
        layer.addTo(m);
      }
      if (cfg.center && !fitted.current) m.setView([cfg.center[1], cfg.center[0]], cfg.zoom ?? 12);
    });
    return () => {
      m.remove();
      map.current = null;
      group.current = null;
      window.__xueliangQueueMap = undefined;
      window.__xueliangQueueLeaflet = undefined;
    };
  }, []);

  useEffect(() => {
    const m = map.current;
    const g = group.current;
    if (!m || !g) return;
    stats.current.cases = drawIncidents(g, items, { onClick: (id) => select.current(id), selected });
    window.__xueliangQueueMap = { ...stats.current };
    const placed = items.filter((i) => i.longitude !== null && i.latitude !== null);
    const chosen = placed.find((i) => i.id === selected);
    if (chosen) {
      m.panTo([chosen.latitude!, chosen.longitude!]);
    } else if (!fitted.current && placed.length > 0) {
      fitted.current = true;
      m.fitBounds(L.latLngBounds(placed.map((i) => [i.latitude!, i.longitude!] as [number, number])).pad(0.3), { maxZoom: 15 });
    }
  }, [items, selected]);

  return <div ref={el} className="incident-map" data-testid="inc-map" style={{ height: 320, borderRadius: 8, margin: '8px 0' }} />;
}
