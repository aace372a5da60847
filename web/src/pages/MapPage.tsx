import { LngLatBounds, type GeoJSONSource, type MapMouseEvent, type MapSourceDataEvent } from 'maplibre-gl';
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, qs } from '../api/client';
import type { Channel, Statistics } from '../api/types';
import { ErrorBox, Refusal, StatusDot } from '../components/Common';
import { GLMapView } from '../components/GLMapView';
import { Player } from '../components/Player';
import { fmtNum, t as tNow, useT } from '../i18n';
import { resetConsoleConfig, type ConsoleConfig } from '../lib/basemap';
import { addDivisionLayers, DIVISION_LAYERS, DivisionLabels, divisionLabels, drawDivisions, fetchDivisions, zoomBand } from '../lib/divisionLayer';
import { featureCollection, nearestOnScreen, setGeoJSON, setVisible, type GLMap } from '../lib/glmap';
import { hoverTips } from '../lib/hoverTip';
import { addIncidentLayer, drawIncidents, fetchIncidents, INCIDENT_LAYERS } from '../lib/incidentLayer';
import { addMemberLayers, drawGridPositions, fetchGridPositions, MEMBER_LAYERS } from '../lib/gridMemberLayer';
import { convexHull, distance, padHull, type XY } from '../lib/geo';
import { loadPoints, overallStatistics, pointsStore, pollChanges, refreshStatuses, type Pt } from '../lib/points';
import { navigate, useLocation } from '../lib/router';
import { can, useUser } from '../lib/session';
import { useStore } from '../lib/store';
import { errorText, toast } from '../lib/toast';
import { openOnWall } from '../lib/wall';
import { Icon } from '../components/Icon';

declare global {
  interface Window {
    __xueliangMapReady?: { points: number; total: number; ms: number; loadMs: number; firstMs: number | null; via: string; buildMs: number };
    __xueliangMapFirst?: { points: number; ms: number; mapMs: number; setMs: number | null };
    __xueliangMapView?: { clusters: number; points: number; zoom: number };
    __xueliangMap?: GLMap;
    __xueliangPointStatus?: (id: string) => string | undefined;
    __xueliangMapLayers?: { divisions: number; divisionsBand: number; incidents: number | null; members: number | null; tilesLoaded: number; tileErrors: number };
  }
}

interface Filters {
  county: string;
  township: string;
  department: string;
  classes: number[];
  tiers: string[];
  statuses: string[];
}

const CHECK = { display: 'flex', alignItems: 'center', gap: 6, fontSize: 13 } as const;
// the panel's inputs are full width; a layer's checkbox is not
const BOX = { width: 16, flex: 'none' } as const;
const ALL: Filters = { county: '', township: '', department: '', classes: [1, 2, 3, 0], tiers: ['high', 'building', 'street', ''], statuses: ['on', 'off', 'unknown'] };
const STATUS_COLOR: Record<string, string> = { on: '#22c55e', off: '#ef4444', unknown: '#94a3b8' };
/** Clusters up to this zoom (MapLibre's supercluster in its worker); single cameras beyond. */
const CLUSTER_MAX_ZOOM = 16;
const CAMERA_LAYERS = ['cam-clusters', 'cam-points'];

export function statusGroup(s: string): 'on' | 'off' | 'unknown' {
  if (s === 'ON') return 'on';
  if (s === 'OFF' || s === 'VLOST' || s === 'DEFECT') return 'off';
  return 'unknown';
}

interface NearResult {
  lon: number;
  lat: number;
  radius: number;
  high: Near[];
  building: Near[];
  street: Near[];
  source: 'server' | 'local';
}
interface Near {
  id: string;
  name: string;
  distance: number;
  status?: string;
  ptz_type?: number;
}

/** Run ``load`` now and every ``every`` ms while ``on``; a failure waits for the next round. */
function usePolled(on: boolean, load: () => Promise<void>, every = 30000): void {
  const current = useRef(load);
  current.current = load;
  useEffect(() => {
    if (!on) return;
    let stop = false;
    let h = 0;
    const tick = async () => {
      try {
        await current.current();
      } catch {
        /* off or refused: tried again next round */
      }
      if (!stop) h = window.setTimeout(tick, every);
    };
    void tick();
    return () => {
      stop = true;
      window.clearTimeout(h);
    };
  }, [on, every]);
}

/** The cameras' layers: clusters (a disc sized by count, its ring by the share offline) and points. */
function addCameraLayers(m: GLMap): void {
  m.addSource('cameras', {
    type: 'geojson',
    data: featureCollection([]),
    cluster: true,
    clusterRadius: 48,
    clusterMaxZoom: CLUSTER_MAX_ZOOM,
    clusterMinPoints: 3,
    // status shares of a cluster, summed in the worker
    clusterProperties: { on: ['+', ['case', ['==', ['get', 'g'], 0], 1, 0]], off: ['+', ['case', ['==', ['get', 'g'], 1], 1, 0]] },
  });
  m.addLayer({
    id: 'cam-clusters', type: 'circle', source: 'cameras', filter: ['has', 'point_count'],
    paint: {
      'circle-color': '#0c1628',
      'circle-opacity': 0.92,
      'circle-radius': ['interpolate', ['linear'], ['ln', ['get', 'point_count']], 1, 13, 7, 24, 11.5, 34],
      'circle-stroke-width': 4,
      'circle-stroke-color': ['interpolate', ['linear'], ['/', ['get', 'off'], ['get', 'point_count']], 0, STATUS_COLOR.on, 0.25, '#f59e0b', 0.6, STATUS_COLOR.off],
    },
  });
  m.addLayer({
    id: 'cam-points', type: 'circle', source: 'cameras', filter: ['!', ['has', 'point_count']],
    paint: {
      'circle-color': ['match', ['get', 'g'], 0, STATUS_COLOR.on, 1, STATUS_COLOR.off, STATUS_COLOR.unknown],
      'circle-opacity': 0.92,
      'circle-radius': ['match', ['get', 'c'], 1, 7, 2, 6, 5],
      'circle-stroke-color': ['match', ['get', 'c'], 1, '#f8fafc', 2, '#f59e0b', '#000000'],
      'circle-stroke-width': ['match', ['get', 'c'], 1, 2, 2, 2, 0],
    },
  });
  setGeoJSON(m, 'cam-selected', featureCollection([]));
  m.addLayer({ id: 'cam-selected', type: 'circle', source: 'cam-selected', paint: { 'circle-radius': 9, 'circle-opacity': 0, 'circle-stroke-color': '#38bdf8', 'circle-stroke-width': 4 } });
}

/** Estimated outlines (hulls of the points) where no boundaries are loaded; the linked-view place. */
function addHullAndLinkLayers(m: GLMap): void {
  setGeoJSON(m, 'hulls', featureCollection([]));
  m.addLayer({ id: 'hulls-fill', type: 'fill', source: 'hulls', paint: { 'fill-color': '#1e293b', 'fill-opacity': 0.18 } });
  m.addLayer({ id: 'hulls-line', type: 'line', source: 'hulls', paint: { 'line-color': ['case', ['get', 'chosen'], '#38bdf8', '#64748b'], 'line-width': 1.2, 'line-dasharray': [4, 4] } });
  setGeoJSON(m, 'link', featureCollection([]));
  m.addLayer({ id: 'link-area', type: 'fill', source: 'link', filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#38bdf8', 'fill-opacity': 0.05, 'fill-outline-color': '#38bdf8' } });
  m.addLayer({ id: 'link-lines', type: 'line', source: 'link', filter: ['==', ['geometry-type'], 'LineString'], paint: { 'line-color': ['get', 'color'], 'line-width': 2, 'line-dasharray': [2, 2] } });
  m.addLayer({ id: 'link-place', type: 'circle', source: 'link', filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 6, 'circle-color': '#0ea5e9', 'circle-stroke-color': '#38bdf8', 'circle-stroke-width': 2 } });
}

/** A circle of ``radius`` metres around a place, as a polygon. */
function circlePolygon(lon: number, lat: number, radius: number, n = 64): GeoJSON.Polygon {
  const dLat = radius / 111320;
  const dLon = radius / (111320 * Math.cos((lat * Math.PI) / 180));
  const ring: [number, number][] = [];
  for (let i = 0; i <= n; i++) {
    const a = (i / n) * 2 * Math.PI;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return { type: 'Polygon', coordinates: [ring] };
}

export default function MapPage() {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const focus = params.get('focus');
  const [glMap, setGlMap] = useState<GLMap | null>(null);
  const map = useRef<GLMap | null>(null);
  // loaded division boundaries replace the hulls estimated from the points
  const hasBoundaries = useRef(false);
  const divisionBand = useRef(-1);
  const labels = useRef<DivisionLabels | null>(null);
  const stats = useRef({ divisions: 0, divisionsBand: -1, incidents: null as number | null, members: null as number | null, tilesLoaded: 0, tileErrors: 0 });
  const lastFull = useRef(0);
  const shown = useRef<Pt[]>([]);
  const fitted = useRef(false);
  const userMoved = useRef(false);
  const lastBuild = useRef(0);
  const buildSeq = useRef(0);
  // for the benchmark: when the map was ready, when it was first given points
  const mapAt = useRef(0);
  const firstSetAt = useRef<number | null>(null);
  const ps = useStore(pointsStore);
  const [filters, setFilters] = useState<Filters>(() => {
    try {
      return { ...ALL, ...JSON.parse(sessionStorage.getItem('xl.mapFilters') ?? '{}') };
    } catch {
      return ALL;
    }
  });
  const [counties, setCounties] = useState<Statistics['children']>([]);
  const [townships, setTownships] = useState<Statistics['children']>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [linkMode, setLinkMode] = useState(false);
  const [radius, setRadius] = useState(1000);
  const [near, setNear] = useState<NearResult | null>(null);
  const [panelOpen, setPanelOpen] = useState(true);
  const [buildTick, setBuildTick] = useState(0);
  const [tileUrl, setTileUrl] = useState<string>('');
  const [view, setView] = useState({ clusters: 0, points: 0 });
  const [shows, setShows] = useState<{ cameras: boolean; divisions: boolean; incidents: boolean; members: boolean }>(() => {
    try {
      return { cameras: true, divisions: true, incidents: true, members: true, ...JSON.parse(sessionStorage.getItem('xl.mapLayers') ?? '{}') };
    } catch {
      return { cameras: true, divisions: true, incidents: true, members: true };
    }
  });
  const [divisionCount, setDivisionCount] = useState<number | null>(null);
  const canIncidents = can(user, 'incidents.read');
  // grid members' positions: the centre's (GET /mobile/positions needs incidents.manage)
  const canMembers = can(user, 'incidents.manage');

  useEffect(() => {
    sessionStorage.setItem('xl.mapFilters', JSON.stringify(filters));
  }, [filters]);

  // ---- map set-up (components/GLMapView calls this once the style has loaded) ----------------
  function onMap(m: GLMap, cfg: ConsoleConfig): () => void {
    // bottom to top: estimated outlines, loaded outlines, cameras, the linked-view place, members, cases
    addHullAndLinkLayers(m);
    addDivisionLayers(m);
    addCameraLayers(m);
    addMemberLayers(m, cfg.center?.[1] ?? m.getCenter().lat);
    addIncidentLayer(m);
    for (const id of ['link-area', 'link-lines', 'link-place']) m.moveLayer(id);
    map.current = m;
    mapAt.current = Math.round(performance.now());
    labels.current = new DivisionLabels(m);
    window.__xueliangMap = m;
    window.__xueliangPointStatus = (id: string) => pointsStore.get().points.find((p) => p.id === id)?.s;
    if (cfg.tile_url) setTileUrl(cfg.tile_auth ? `${tNow('map.platformBasemap')} · ${cfg.tile_url}` : cfg.tile_url);
    const onMove = () => {
      viewRef.current();
      divisionsRef.current();
    };
    m.on('moveend', onMove);
    m.on('idle', () => viewRef.current());
    // the first cameras drawn (for the benchmark): the frame after the worker's first tiles with some
    const firstDrawn = (e: MapSourceDataEvent) => {
      if (e.sourceId !== 'cameras' || window.__xueliangMapFirst || !m.isSourceLoaded('cameras')) return;
      const n = m.querySourceFeatures('cameras').length;
      if (!n) return;
      m.off('sourcedata', firstDrawn);
      m.once('render', () => (window.__xueliangMapFirst = { points: shown.current.length, ms: Math.round(performance.now()), mapMs: mapAt.current, setMs: firstSetAt.current }));
    };
    m.on('sourcedata', firstDrawn);
    m.on('click', (e) => clickRef.current(e));
    // until the operator touches the map, it keeps fitting the points as they arrive
    const container = m.getCanvasContainer();
    const touched = () => (userMoved.current = true);
    for (const ev of ['mousedown', 'wheel', 'touchstart', 'keydown']) container.addEventListener(ev, touched, { passive: true });
    const tips = hoverTips(m, [...INCIDENT_LAYERS, 'members', ...CAMERA_LAYERS], (f) => {
      if (f.properties?.tip) return String(f.properties.tip);
      if (f.layer.id === 'cam-clusters') {
        const p = f.properties as { point_count: number; on: number; off: number };
        return `${p.point_count} · ${p.on} ${tNow('status.on')} · ${p.off} ${tNow('status.off')}`;
      }
      const pt = shown.current[Number(f.properties?.i)];
      return pt?.name ?? null;
    });
    setGlMap(m);
    return () => {
      tips();
      labels.current?.clear();
      map.current = null;
      delete window.__xueliangMap;
    };
  }

  useEffect(() => {
    void loadPoints();
    overallStatistics()
      .then((st) => setCounties(st.children))
      .catch(() => undefined);
  }, []);

  // township list for the chosen county
  useEffect(() => {
    setTownships([]);
    if (!filters.county) return;
    api<Statistics>(`/statistics${qs({ division: filters.county })}`)
      .then((st) => setTownships(st.children))
      .catch(() => undefined);
  }, [filters.county]);

  // Keep the map current: ask what changed every few seconds (the platform answers from an
  // index, scoped to the user); without the compact form, re-read statuses now and then.
  useEffect(() => {
    let stop = false;
    let h = 0;
    const tick = async () => {
      const s = pointsStore.get();
      try {
        if (s.asOf) await pollChanges();
        else if (s.done && !s.error && s.loaded <= 20000 && Date.now() - lastFull.current > 60000) {
          lastFull.current = Date.now();
          await refreshStatuses();
        }
      } catch {
        /* offline for a moment: try again at the next tick */
      }
      if (!stop) h = window.setTimeout(tick, pointsStore.get().points.length > 20000 ? 15000 : 5000);
    };
    h = window.setTimeout(tick, 5000);
    return () => {
      stop = true;
      window.clearTimeout(h);
    };
  }, []);

  const departments = useMemo(() => {
    const set = new Set<string>();
    for (const p of ps.points) if (p.d) set.add(p.d);
    return [...set].sort((a, b) => a.localeCompare(b, 'zh'));
    // departments only change as points arrive
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ps.done, Math.floor(ps.points.length / 20000)]);

  // ---- the cameras' source: set again on new points (throttled while loading) and on filters --
  useEffect(() => {
    // while loading, set the data now and then (more rarely as it grows: clustering 100,000
    // points takes MapLibre's worker a few hundred ms)
    const since = performance.now() - lastBuild.current;
    const every = shown.current.length > 20000 ? 2500 : 1200;
    if (!ps.done && since < every && shown.current.length > 0) {
      const h = window.setTimeout(() => setBuildTick((x) => x + 1), every - since);
      return () => window.clearTimeout(h);
    }
    build();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ps.version, ps.done, filters, buildTick, glMap]);

  function build() {
    const tb = performance.now();
    const f = filters;
    const pre = f.township || f.county;
    const cls = new Set(f.classes);
    const tiers = new Set(f.tiers);
    const sts = new Set(f.statuses);
    const pts = ps.points.filter(
      (p) => (!pre || p.v.startsWith(pre)) && (!f.department || p.d === f.department) && cls.has(p.c) && tiers.has(p.t) && sts.has(statusGroup(p.s)),
    );
    shown.current = pts;
    const m = map.current;
    if (!m) return; // the map not made yet: set as soon as it is (not held back by the throttle)
    lastBuild.current = performance.now();
    const G = { on: 0, off: 1, unknown: 2 } as const;
    const seq = ++buildSeq.current;
    if (pts.length && firstSetAt.current === null) firstSetAt.current = Math.round(performance.now());
    // MapLibre clusters in its worker; the page keeps the points, features carry their index
    (m.getSource('cameras') as GeoJSONSource).setData(featureCollection(pts.map((p, i) => ({ type: 'Feature', properties: { i, g: G[statusGroup(p.s)], c: p.c }, geometry: { type: 'Point', coordinates: [p.x, p.y] } }))));
    if (pts.length && !focus && (!fitted.current || (ps.done && !userMoved.current))) {
      fitted.current = true;
      m.fitBounds(boundsOf(pts), { padding: { left: panelOpen ? 300 : 30, top: 30, right: 30, bottom: 50 }, animate: false, maxZoom: 17 });
    } else if (pts.length) fitted.current = true;
    if (ps.done) drawBoundaries();
    const buildMs = Math.round(performance.now() - tb);
    const done = ps.done && !ps.error;
    const snap = { loaded: ps.loaded, doneAt: ps.doneAt, startedAt: ps.startedAt, firstAt: ps.firstAt, via: ps.via };
    // the worker has clustered and the map has drawn them: counted then (the tests wait for it)
    m.once('idle', () => {
      if (map.current !== m || seq !== buildSeq.current) return;
      updateView();
      if (done) {
        window.__xueliangMapReady = {
          points: pts.length,
          total: snap.loaded,
          ms: Math.round(performance.now()),
          loadMs: Math.round((snap.doneAt ?? 0) - snap.startedAt),
          firstMs: snap.firstAt === null ? null : Math.round(snap.firstAt),
          via: snap.via,
          buildMs,
        };
      }
    });
  }

  /** What the view shows: clusters and single cameras drawn (the legend and the tests). */
  function updateView() {
    const m = map.current;
    if (!m || !m.getLayer('cam-points')) return;
    let nc = 0;
    let np = 0;
    if (showsRef.current.cameras) {
      const seen = new Set<string>();
      for (const f of m.queryRenderedFeatures({ layers: CAMERA_LAYERS })) {
        // a feature drawn in two tiles is one
        const key = f.layer.id === 'cam-clusters' ? `c${f.properties?.cluster_id}` : `p${f.properties?.i}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (f.layer.id === 'cam-clusters') nc++;
        else np++;
      }
    }
    window.__xueliangMapView = { clusters: nc, points: np, zoom: Math.round(m.getZoom()) };
    setView((v) => (v.clusters === nc && v.points === np ? v : { clusters: nc, points: np }));
  }
  const viewRef = useRef(updateView);
  viewRef.current = updateView;

  const selectedRef = useRef<string | null>(null);
  selectedRef.current = selected;

  // one click handler: clusters zoom in, points open, the link mode picks a place
  const clickRef = useRef<(e: MapMouseEvent) => void>(() => undefined);
  clickRef.current = (e) => {
    const m = map.current;
    if (!m) return;
    const box: [[number, number], [number, number]] = [[e.point.x - 4, e.point.y - 4], [e.point.x + 4, e.point.y + 4]];
    const hits = showsRef.current.cameras ? m.queryRenderedFeatures(box, { layers: CAMERA_LAYERS }) : [];
    const point = hits.find((f) => f.layer.id === 'cam-points');
    const cluster = hits.find((f) => f.layer.id === 'cam-clusters');
    if (cluster && !point && !linkModeRef.current) {
      const [lng, lat] = (cluster.geometry as GeoJSON.Point).coordinates;
      void (m.getSource('cameras') as GeoJSONSource)
        .getClusterExpansionZoom(Number(cluster.properties?.cluster_id))
        .then((z) => m.easeTo({ center: [lng, lat], zoom: Math.min(z, 18) }))
        .catch(() => m.easeTo({ center: [lng, lat], zoom: m.getZoom() + 2 }));
      return;
    }
    // a click beside a camera not drawn yet after a move (clusters end at CLUSTER_MAX_ZOOM)
    let p: Pt | null = point ? shown.current[Number(point.properties?.i)] ?? null : null;
    if (!p && showsRef.current.cameras && m.getZoom() > CLUSTER_MAX_ZOOM) {
      const ll = e.lngLat;
      const near = shown.current.filter((q) => Math.abs(q.x - ll.lng) < 0.002 && Math.abs(q.y - ll.lat) < 0.002);
      p = nearestOnScreen(m, e.point, near, (q) => [q.x, q.y], 9);
    }
    if (p) {
      if (linkModeRef.current) linkAt(p.x, p.y);
      else setSelected(p.id);
      return;
    }
    if (linkModeRef.current) linkAt(e.lngLat.lng, e.lngLat.lat);
  };

  // the selected point's ring
  useEffect(() => {
    const m = map.current;
    if (!m) return;
    const p = selected ? pointsStore.get().points.find((x) => x.id === selected) : undefined;
    setGeoJSON(m, 'cam-selected', featureCollection(p ? [{ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [p.x, p.y] } }] : []));
  }, [selected, glMap]);

  function drawBoundaries() {
    const m = map.current;
    if (!m) return;
    if (hasBoundaries.current) {
      setGeoJSON(m, 'hulls', featureCollection([]));
      return;
    }
    const names = new Map<string, string>();
    for (const c of counties) names.set(c.code, c.name ?? c.code);
    for (const c of townships) names.set(c.code, c.name ?? c.code);
    const all = ps.points;
    const level = filters.county ? 9 : 6;
    const groups = new Map<string, XY[]>();
    for (const p of all) {
      if (p.v.length < level) continue;
      if (filters.county && !p.v.startsWith(filters.county)) continue;
      const k = p.v.slice(0, level);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push([p.x, p.y]);
    }
    const feats: GeoJSON.Feature[] = [];
    const hullLabels: { name: string; lng: number; lat: number }[] = [];
    for (const [code, pts] of groups) {
      if (pts.length < 3) continue;
      const hull = padHull(convexHull(pts), level === 6 ? 0.006 : 0.003);
      feats.push({ type: 'Feature', properties: { code, chosen: code === filters.township }, geometry: { type: 'Polygon', coordinates: [[...hull, hull[0]]] } });
      const cx = hull.reduce((a, p) => a + p[0], 0) / hull.length;
      const cy = hull.reduce((a, p) => a + p[1], 0) / hull.length;
      hullLabels.push({ name: names.get(code) ?? code, lng: cx, lat: cy });
    }
    setGeoJSON(m, 'hulls', featureCollection(feats));
    labels.current?.set(hullLabels);
  }

  useEffect(() => {
    if (ps.done) drawBoundaries();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [counties, townships]);

  // ---- layers: cameras, division boundaries, incidents, members -------------------------------
  const showsRef = useRef(shows);
  showsRef.current = shows;
  useEffect(() => {
    sessionStorage.setItem('xl.mapLayers', JSON.stringify(shows));
    const m = map.current;
    if (!m) return;
    setVisible(m, [...CAMERA_LAYERS, 'cam-selected'], shows.cameras);
    setVisible(m, DIVISION_LAYERS, shows.divisions);
    setVisible(m, INCIDENT_LAYERS, shows.incidents);
    setVisible(m, MEMBER_LAYERS, shows.members);
    divisionBand.current = -1; // asked again for the current zoom when shown
    loadDivisions();
    updateView();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shows, glMap]);

  function publishLayers(patch: Partial<typeof stats.current>) {
    stats.current = { ...stats.current, ...patch };
    window.__xueliangMapLayers = { ...stats.current };
  }

  /** The loaded boundaries for the current zoom band (asked again only when the band changes). */
  function loadDivisions() {
    const m = map.current;
    if (m && hasBoundaries.current && !showsRef.current.divisions) labels.current?.clear();
    if (!m || !showsRef.current.divisions) return;
    const band = zoomBand(m.getZoom());
    if (band === divisionBand.current) return;
    divisionBand.current = band;
    fetchDivisions(band)
      .then((fc) => {
        if (divisionBand.current !== band || map.current !== m) return;
        const n = drawDivisions(m, fc);
        labels.current?.set(divisionLabels(fc, m.getZoom()));
        const had = hasBoundaries.current;
        hasBoundaries.current = n > 0;
        if (had !== hasBoundaries.current) drawBoundaries();
        setDivisionCount(n);
        publishLayers({ divisions: n, divisionsBand: band });
      })
      .catch(() => {
        divisionBand.current = -1; // try again at the next move
      });
  }
  const divisionsRef = useRef(loadDivisions);
  divisionsRef.current = loadDivisions;

  // open incidents, for who may see them, and grid members' last positions, for the centre:
  // each asked again every 30 s while shown (refused or off: the layer stays empty)
  usePolled(!!glMap && canIncidents && shows.incidents, async () => {
    const list = await fetchIncidents();
    if (map.current) publishLayers({ incidents: drawIncidents(map.current, list) });
  });
  usePolled(!!glMap && canMembers && shows.members, async () => {
    const list = await fetchGridPositions();
    if (map.current) publishLayers({ members: drawGridPositions(map.current, list) });
  });

  // ---- focus from the URL (?focus=<channel id>) ------------------------------------------------
  useEffect(() => {
    if (!focus) return;
    const p = ps.points.find((x) => x.id === focus);
    if (p && map.current) {
      map.current.jumpTo({ center: [p.x, p.y], zoom: 17 });
      setSelected(p.id);
    } else if (ps.done) setSelected(focus);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focus, ps.done, glMap]);

  // ---- 立体化联动: the nearest high, building and street cameras around a place ----------------
  const linkModeRef = useRef(false);
  linkModeRef.current = linkMode;
  useEffect(() => {
    glMap?.getContainer().classList.toggle('picking', linkMode);
  }, [linkMode, glMap]);

  async function linkAt(lon: number, lat: number) {
    setLinkMode(false);
    let res: NearResult | null = null;
    try {
      const r = await api<{ high?: Channel[]; building?: Channel[]; street?: Channel[] }>(`/channels/near${qs({ lon, lat, radius })}`);
      if (r && (r.high || r.building || r.street)) {
        const conv = (l?: (Channel & { distance?: number })[]) =>
          (l ?? []).map((c) => ({ id: c.id, name: c.name, status: c.status, ptz_type: c.ptz_type ?? undefined, distance: c.distance ?? (c.longitude !== null && c.latitude !== null ? distance(lon, lat, c.longitude, c.latitude) : NaN) }));
        res = { lon, lat, radius, high: conv(r.high), building: conv(r.building), street: conv(r.street), source: 'server' };
      }
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 422))) toast(errorText(e), 'error');
    }
    if (!res) res = nearLocal(pointsStore.get().points, lon, lat, radius);
    setNear(res);
    drawLink(res);
    // keep the place visible above the linked views
    const m = map.current;
    if (m) {
      m.jumpTo({ center: [lon, lat] });
      m.panBy([0, Math.round(m.getContainer().clientHeight * 0.25)], { animate: false });
    }
  }

  function drawLink(r: NearResult | null) {
    const m = map.current;
    if (!m) return;
    if (!r) {
      setGeoJSON(m, 'link', featureCollection([]));
      return;
    }
    const feats: GeoJSON.Feature[] = [
      { type: 'Feature', properties: {}, geometry: circlePolygon(r.lon, r.lat, r.radius) },
      { type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [r.lon, r.lat] } },
    ];
    const byId = new Map(pointsStore.get().points.map((p) => [p.id, p]));
    for (const [tier, color] of [['high', '#a78bfa'], ['building', '#f59e0b'], ['street', '#22d3ee']] as const) {
      const c = r[tier][0];
      const p = c && byId.get(c.id);
      if (p) feats.push({ type: 'Feature', properties: { color }, geometry: { type: 'LineString', coordinates: [[r.lon, r.lat], [p.x, p.y]] } });
    }
    setGeoJSON(m, 'link', featureCollection(feats));
  }

  const progress = ps.total ? Math.min(1, ps.loaded / ps.total) : ps.done ? 1 : 0;
  const toggle = <K extends 'classes' | 'tiers' | 'statuses'>(k: K, v: Filters[K][number]) =>
    setFilters((f) => {
      const arr = f[k] as (typeof v)[];
      return { ...f, [k]: arr.includes(v) ? arr.filter((x) => x !== v) : [...arr, v] };
    });

  return (
    <div className="map-page dark">
      <GLMapView className="map" testId="map" onMap={onMap} onTiles={(s) => publishLayers(s)} />
      {panelOpen ? (
        <aside className="map-filters" data-testid="map-filters">
          <div className="panel-head">
            <b>{t('map.filters')}</b>
            <button className="icon-btn" onClick={() => setPanelOpen(false)}>‹</button>
          </div>
          <div className="load-line">
            {ps.done ? (
              <span data-testid="map-count">
                {t('map.showing', { shown: fmtNum(shown.current.length), total: fmtNum(ps.loaded) })}
                {ps.unplaced > 0 && <small className="muted"> · {t('map.unplaced', { n: fmtNum(ps.unplaced) })}</small>}
              </span>
            ) : (
              <span>
                <span className="spinner" /> {t('map.loading', { loaded: fmtNum(ps.loaded), total: ps.total === null ? '…' : fmtNum(ps.total) })}
              </span>
            )}
            <div className="progress"><div style={{ width: `${progress * 100}%` }} /></div>
          </div>
          {ps.error ? <ErrorBox error={ps.error} /> : null}
          <label className="field">
            <span>{t('map.county')}</span>
            <select value={filters.county} onChange={(e) => setFilters({ ...filters, county: e.target.value, township: '' })} data-testid="filter-county">
              <option value="">{t('common.all')}</option>
              {counties.map((c) => (
                <option key={c.code} value={c.code}>{c.name ?? c.code} ({c.points})</option>
              ))}
            </select>
          </label>
          {filters.county && (
            <label className="field">
              <span>{t('map.township')}</span>
              <select value={filters.township} onChange={(e) => setFilters({ ...filters, township: e.target.value })}>
                <option value="">{t('common.all')}</option>
                {townships.map((c) => (
                  <option key={c.code} value={c.code}>{c.name ?? c.code} ({c.points})</option>
                ))}
              </select>
            </label>
          )}
          <label className="field">
            <span>{t('map.department')}</span>
            <select value={filters.department} onChange={(e) => setFilters({ ...filters, department: e.target.value })} data-testid="filter-department">
              <option value="">{t('common.all')}</option>
              {departments.map((d) => (
                <option key={d} value={d}>{d}</option>
              ))}
            </select>
          </label>
          <div className="field">
            <span>{t('map.class')}</span>
            <div className="chips">
              {[1, 2, 3].map((c) => (
                <button key={c} className={`chip ${filters.classes.includes(c) ? 'on' : ''}`} onClick={() => toggle('classes', c)} data-testid={`filter-class-${c}`}>
                  {t(`class.${c}`)}
                </button>
              ))}
            </div>
          </div>
          <div className="field">
            <span>{t('map.tier')}</span>
            <div className="chips">
              {['high', 'building', 'street'].map((x) => (
                <button key={x} className={`chip ${filters.tiers.includes(x) ? 'on' : ''}`} onClick={() => toggle('tiers', x)}>
                  {t(`tier.${x}`)}
                </button>
              ))}
            </div>
          </div>
          <div className="field">
            <span>{t('map.status')}</span>
            <div className="chips">
              {(['on', 'off', 'unknown'] as const).map((x) => (
                <button key={x} className={`chip ${filters.statuses.includes(x) ? 'on' : ''}`} onClick={() => toggle('statuses', x)} data-testid={`filter-status-${x}`}>
                  <span className="dot" style={{ background: STATUS_COLOR[x] }} /> {t(`status.${x}`)}
                </button>
              ))}
            </div>
          </div>
          <div className="row gap">
            <button className="btn small" onClick={() => setFilters(ALL)}>{t('map.reset')}</button>
            {ps.done && ps.loaded > 20000 && (
              <button className="btn small" onClick={() => void (pointsStore.get().asOf ? pollChanges() : refreshStatuses()).then((n) => toast(t('map.refreshed', { n })))}>{t('map.refreshStatus')}</button>
            )}
          </div>
          <hr />
          <div className="field">
            <span>{t('map.linked')}</span>
            <p className="muted small">{t('map.linkedHint')}</p>
            <div className="row gap">
              <select value={radius} onChange={(e) => setRadius(Number(e.target.value))} title={t('map.radius')}>
                {[300, 500, 1000, 2000, 5000].map((r) => (
                  <option key={r} value={r}>{r >= 1000 ? `${r / 1000} km` : `${r} m`}</option>
                ))}
              </select>
              <button className={`btn small ${linkMode ? 'primary' : ''}`} onClick={() => setLinkMode(!linkMode)} data-testid="link-mode">
                <Icon name="target" /> {linkMode ? t('map.pickingPlace') : t('map.pickPlace')}
              </button>
            </div>
          </div>
          <hr />
          <div className="field" data-testid="map-layers">
            <span>{t('map.layers')}</span>
            <label style={CHECK}><input type="checkbox" style={BOX} checked={shows.cameras} onChange={(e) => setShows({ ...shows, cameras: e.target.checked })} data-testid="layer-cameras" /> {t('map.layerCameras')}</label>
            <label style={CHECK}>
              <input type="checkbox" style={BOX} checked={shows.divisions} onChange={(e) => setShows({ ...shows, divisions: e.target.checked })} data-testid="layer-divisions" /> {t('map.layerDivisions')}
              {divisionCount === 0 && <small className="muted"> · {t('map.noDivisions')}</small>}
            </label>
            {canIncidents && (
              <label style={CHECK}><input type="checkbox" style={BOX} checked={shows.incidents} onChange={(e) => setShows({ ...shows, incidents: e.target.checked })} data-testid="layer-incidents" /> {t('map.layerIncidents')}</label>
            )}
            {canMembers && (
              <label style={CHECK}><input type="checkbox" style={BOX} checked={shows.members} onChange={(e) => setShows({ ...shows, members: e.target.checked })} data-testid="layer-members" /> {t('map.layerMembers')}</label>
            )}
          </div>
          <hr />
          <details className="small">
            <summary>{t('map.basemap')}</summary>
            <p className="muted">{tileUrl ? tileUrl : t('map.noBasemap')}</p>
            <BasemapEditor />
          </details>
        </aside>
      ) : (
        <button className="btn map-filters-open" onClick={() => setPanelOpen(true)}>☰ {t('map.filters')}</button>
      )}
      <div className="map-legend">
        <span><i className="dot" style={{ background: STATUS_COLOR.on }} /> {t('status.on')}</span>
        <span><i className="dot" style={{ background: STATUS_COLOR.off }} /> {t('status.off')}</span>
        <span><i className="dot" style={{ background: STATUS_COLOR.unknown }} /> {t('status.unknown')}</span>
        <span><i className="ring r1" /> {t('class.1')}</span>
        <span><i className="ring r2" /> {t('class.2')}</span>
        <span><i className="ring r3" /> {t('class.3')}</span>
        <span className="muted">{t('map.inView', { c: view.clusters, p: view.points })}</span>
      </div>
      {selected && <PointPanel id={selected} name={ps.points.find((x) => x.id === selected)?.name} onClose={() => setSelected(null)} onLink={(lon, lat) => linkAt(lon, lat)} canLive={can(user, 'media.live')} />}
      {near && <LinkedView r={near} onClose={() => { setNear(null); drawLink(null); }} />}
    </div>
  );
}

function BasemapEditor() {
  const t = useT();
  const [v, setV] = useState(localStorage.getItem('xl.tileUrl') ?? '');
  return (
    <div className="row gap">
      <input value={v} onChange={(e) => setV(e.target.value)} placeholder="https://gis.example/tiles/{z}/{x}/{y}.png" />
      <button
        className="btn small"
        onClick={() => {
          if (v.trim()) localStorage.setItem('xl.tileUrl', v.trim());
          else localStorage.removeItem('xl.tileUrl');
          resetConsoleConfig();
          toast(t('map.basemapSaved'));
          location.reload();
        }}
      >
        {t('common.save')}
      </button>
    </div>
  );
}

function boundsOf(pts: Pt[]): LngLatBounds {
  let w = 180, s = 90, e = -180, n = -90;
  for (const p of pts) {
    if (p.x < w) w = p.x;
    if (p.x > e) e = p.x;
    if (p.y < s) s = p.y;
    if (p.y > n) n = p.y;
  }
  return new LngLatBounds([w, s], [e, n]);
}

/** The nearest cameras of each tier around a place, from the points already loaded. */
export function nearLocal(points: Pt[], lon: number, lat: number, radius: number): NearResult {
  const out: NearResult = { lon, lat, radius, high: [], building: [], street: [], source: 'local' };
  const dLat = radius / 111320;
  const dLon = radius / (111320 * Math.cos((lat * Math.PI) / 180));
  for (const p of points) {
    if (Math.abs(p.y - lat) > dLat || Math.abs(p.x - lon) > dLon) continue;
    const d = distance(lon, lat, p.x, p.y);
    if (d > radius) continue;
    const list = p.t === 'high' ? out.high : p.t === 'building' ? out.building : p.t === 'street' ? out.street : null;
    list?.push({ id: p.id, name: p.name, distance: d, status: p.s, ptz_type: p.p });
  }
  for (const k of ['high', 'building', 'street'] as const) out[k] = out[k].sort((a, b) => a.distance - b.distance).slice(0, 8);
  return out;
}

function PointPanel({ id, name, onClose, onLink, canLive }: { id: string; name?: string; onClose: () => void; onLink: (lon: number, lat: number) => void; canLive: boolean }) {
  const t = useT();
  const [c, setC] = useState<Channel | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    setC(null);
    setErr(null);
    api<Channel>(`/channels/${encodeURIComponent(id)}`)
      .then(setC)
      .catch(setErr);
  }, [id]);
  return (
    <aside className="point-panel" data-testid="point-panel">
      <div className="panel-head">
        <b>{c?.name ?? name ?? id}</b>
        <button className="icon-btn" onClick={onClose} aria-label="close">✕</button>
      </div>
      {err ? (
        err instanceof ApiError && err.refused ? <Refusal detail={err.message} what={id} /> : <ErrorBox error={err} />
      ) : !c ? (
        <div className="loading"><span className="spinner" /></div>
      ) : (
        <>
          {canLive ? <Player source={{ kind: 'live', channelId: c.id }} title={c.name} /> : <div className="muted">{t('player.noRight')}</div>}
          <dl className="kv">
            <dt>{t('ch.id')}</dt><dd className="mono">{c.id}</dd>
            <dt>{t('ch.status')}</dt><dd><StatusDot status={c.status} /> {c.status}</dd>
            <dt>{t('ch.class')}</dt><dd>{c.point_class ? t(`class.${c.point_class}`) : '—'}</dd>
            <dt>{t('ch.tier')}</dt><dd>{c.tier ? t(`tier.${c.tier}`) : '—'}</dd>
            <dt>{t('ch.department')}</dt><dd>{c.department ?? '—'}</dd>
            <dt>{t('ch.address')}</dt><dd>{c.address ?? '—'}</dd>
          </dl>
          <div className="row gap wrap">
            <button className="btn small primary" onClick={() => { openOnWall({ id: c.id, name: c.name, status: c.status, ptz_type: c.ptz_type }); navigate('/app/wall'); }}>
              <Icon name="wall" /> {t('map.toWall')}
            </button>
            <button className="btn small" onClick={() => navigate(`/app/channel/${c.id}`)}>{t('wall.details')}</button>
            {c.longitude !== null && c.latitude !== null && (
              <button className="btn small" onClick={() => onLink(c.longitude!, c.latitude!)} data-testid="link-here"><Icon name="target" /> {t('map.linkHere')}</button>
            )}
          </div>
        </>
      )}
    </aside>
  );
}

function LinkedView({ r, onClose }: { r: NearResult; onClose: () => void }) {
  const t = useT();
  const [pick, setPick] = useState<Record<string, number>>({ high: 0, building: 0, street: 0 });
  return (
    <section className="linked" data-testid="linked-view">
      <div className="panel-head">
        <b><Icon name="target" /> {t('map.linked')}</b>
        <span className="muted small">
          {r.lat.toFixed(5)}, {r.lon.toFixed(5)} · {t('map.within', { r: r.radius })} · {r.source === 'server' ? t('map.nearServer') : t('map.nearLocal')}
        </span>
        <span className="grow" />
        <button className="icon-btn" onClick={onClose} aria-label="close">✕</button>
      </div>
      <div className="linked-cols">
        {(['high', 'building', 'street'] as const).map((tier) => {
          const list = r[tier];
          const cur = list[pick[tier]] ?? list[0];
          return (
            <div key={tier} className={`linked-col ${tier}`} data-testid={`linked-${tier}`}>
              <div className="linked-title">
                <b>{t(`tier.${tier}`)}</b> <span className="muted small">{list.length ? `${cur.name} · ${Math.round(cur.distance)} m` : t('map.noneNear')}</span>
              </div>
              {cur ? <Player source={{ kind: 'live', channelId: cur.id }} title={cur.name} showStats={false} /> : <div className="player empty" />}
              <div className="linked-list">
                {list.map((c, i) => (
                  <button key={c.id} className={`chip ${i === pick[tier] ? 'on' : ''}`} onClick={() => setPick({ ...pick, [tier]: i })} title={c.id}>
                    <StatusDot status={c.status} /> {c.name} · {Math.round(c.distance)} m
                  </button>
                ))}
              </div>
            </div>
          );
        })}
      </div>
    </section>
  );
}
