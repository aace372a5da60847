// The incident queue's map: the listed cases on the console's map (components/GLMapView, the
// same as the map page's), a click on a case's marker selects it in the queue, the selected one
// drawn larger and centred.

import { useEffect, useRef, useState } from 'react';
import { LngLatBounds } from 'maplibre-gl';
import { GLMapView } from '../components/GLMapView';
import { hoverTips } from '../lib/hoverTip';
import type { GLMap } from '../lib/glmap';
import { nearestOnScreen } from '../lib/glmap';
import { addIncidentLayer, drawIncidents, INCIDENT_LAYERS, placedOpen, type IncidentPoint } from '../lib/incidentLayer';

declare global {
  interface Window {
    /** For the tests: how many cases the queue's map drew, and the basemap tiles it loaded. */
    __xueliangQueueMap?: { cases: number; tilesLoaded: number };
    __xueliangQueueGL?: GLMap;
  }
}

export function IncidentMap({ items, selected, onSelect }: { items: IncidentPoint[]; selected: number | null; onSelect: (id: number) => void }) {
  const [map, setMap] = useState<GLMap | null>(null);
  const fitted = useRef(false);
  const stats = useRef({ cases: 0, tilesLoaded: 0 });
  const select = useRef(onSelect);
  select.current = onSelect;
  const shown = useRef<IncidentPoint[]>([]);

  function onMap(m: GLMap) {
    addIncidentLayer(m);
    const tips = hoverTips(m, INCIDENT_LAYERS);
    m.on('click', (e) => {
      const hit = m.queryRenderedFeatures(e.point, { layers: INCIDENT_LAYERS })[0];
      // a marker not yet drawn after a move: the nearest case within its radius still counts
      const id = hit ? Number(hit.properties?.id) : nearestOnScreen(m, e.point, shown.current, (i) => [i.longitude!, i.latitude!], 12)?.id;
      if (id !== undefined && !Number.isNaN(id)) select.current(id);
    });
    window.__xueliangQueueGL = m;
    setMap(m);
    return () => {
      tips();
      window.__xueliangQueueMap = undefined;
      window.__xueliangQueueGL = undefined;
    };
  }

  useEffect(() => {
    if (!map) return;
    shown.current = placedOpen(items);
    stats.current.cases = drawIncidents(map, items, selected);
    window.__xueliangQueueMap = { ...stats.current };
    const chosen = shown.current.find((i) => i.id === selected);
    if (chosen) {
      map.panTo([chosen.longitude!, chosen.latitude!]);
    } else if (!fitted.current && shown.current.length > 0) {
      fitted.current = true;
      const b = new LngLatBounds();
      for (const i of shown.current) b.extend([i.longitude!, i.latitude!]);
      map.fitBounds(b, { padding: 40, maxZoom: 15, animate: false });
    }
  }, [map, items, selected]);

  return (
    <GLMapView
      className="incident-map"
      testId="inc-map"
      style={{ height: 420, borderRadius: 8, position: 'relative' }}
      zoom={11}
      onMap={onMap}
      onTiles={(s) => {
        stats.current.tilesLoaded = s.tilesLoaded;
        window.__xueliangQueueMap = { ...stats.current };
      }}
    />
  );
}
