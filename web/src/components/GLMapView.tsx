// The console's map, one component for every page that shows one (the map page, the incident
// queue): MapLibre on the configured basemap (lib/glmap.ts), navigation, scale and the 3D tilt
// control. The page adds its own layers in ``onMap``, once the style has loaded. Without WebGL
// it says so in place of the map instead of staying blank.

import { useEffect, useRef, useState, type CSSProperties } from 'react';
import { NavigationControl, ScaleControl } from 'maplibre-gl';
import { t as tNow } from '../i18n';
import { consoleConfig, type ConsoleConfig } from '../lib/basemap';
import { authRequest, basemapStyle, GLMap, TiltControl, webglAvailable } from '../lib/glmap';

export interface MapStats {
  tilesLoaded: number;
  tileErrors: number;
}

interface Props {
  className?: string;
  testId?: string;
  style?: CSSProperties;
  /** Where to look before the page knows better: [lon, lat] and zoom (the config's centre wins). */
  center?: [number, number];
  zoom?: number;
  /** The map is ready (style loaded): add layers and handlers; return a clean-up. */
  onMap: (map: GLMap, cfg: ConsoleConfig) => void | (() => void);
  /** Basemap tiles loaded and failed so far (for the tests and the panel). */
  onTiles?: (s: MapStats) => void;
}

export function GLMapView({ className, testId, style, center = [117.25, 31.85], zoom = 5, onMap, onTiles }: Props) {
  const el = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const ready = useRef(onMap);
  ready.current = onMap;
  const tiles = useRef(onTiles);
  tiles.current = onTiles;

  useEffect(() => {
    if (!el.current) return;
    if (!webglAvailable()) {
      setFailed(tNow('map.noWebgl'));
      return;
    }
    let map: GLMap | null = null;
    let cleanup: void | (() => void);
    let gone = false;
    void consoleConfig().then((cfg) => {
      if (gone || !el.current) return;
      try {
        map = new GLMap({
          container: el.current,
          style: basemapStyle(cfg),
          center: cfg.center ? [cfg.center[0], cfg.center[1]] : center,
          zoom: cfg.center ? (cfg.zoom ?? 12) : zoom,
          minZoom: 3,
          maxZoom: 19.5,
          maxPitch: 70,
          attributionControl: { compact: true },
          transformRequest: authRequest,
        });
      } catch (e) {
        // WebGL present but the context could not be made (a blocklisted driver, lost GPU)
        setFailed(`${tNow('map.noWebgl')} (${e instanceof Error ? e.message : String(e)})`);
        return;
      }
      const m = map;
      m.addControl(new NavigationControl({ visualizePitch: true }), 'bottom-right');
      m.addControl(new TiltControl(tNow('map.tilt')), 'bottom-right');
      m.addControl(new ScaleControl({ unit: 'metric' }), 'bottom-left');
      const stats = { tilesLoaded: 0, tileErrors: 0 };
      m.on('sourcedata', (e) => {
        if (e.sourceId === 'basemap' && e.tile && e.sourceDataType !== 'metadata') {
          stats.tilesLoaded += 1;
          tiles.current?.({ ...stats });
        }
      });
      m.on('error', (e) => {
        const src = (e as unknown as { sourceId?: string }).sourceId;
        if (src === 'basemap') {
          stats.tileErrors += 1;
          tiles.current?.({ ...stats });
        }
      });
      m.on('load', () => {
        if (!gone) cleanup = ready.current(m, cfg);
      });
    });
    return () => {
      gone = true;
      if (typeof cleanup === 'function') cleanup();
      map?.remove();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <div ref={el} className={className} data-testid={testId} style={style}>
      {failed && <div className="map-nowebgl" data-testid="map-nowebgl" role="alert">{failed}</div>}
    </div>
  );
}
