import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import Supercluster, { type ClusterProperties } from 'supercluster';
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, qs } from '../api/client';
import type { Channel, Statistics } from '../api/types';
import { ErrorBox, Refusal, StatusDot } from '../components/Common';
import { Player } from '../components/Player';
import { fmtNum, t as tNow, useT } from '../i18n';
import { basemapLayer, consoleConfig, resetConsoleConfig } from '../lib/basemap';
import { itemLayer, type ItemLayer, type MapItem } from '../lib/clusterLayer';
import { drawDivisions, fetchDivisions, zoomBand } from '../lib/divisionLayer';
import { drawIncidents, fetchIncidents } from '../lib/incidentLayer';
import { drawGridPositions, fetchGridPositions } from '../lib/gridMemberLayer';
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
    __xueliangMapFirst?: { points: number; ms: number };
    __xueliangMapView?: { clusters: number; points: number; zoom: number; clusterMs?: number; drawMs?: number };
    __xueliangMap?: L.Map;
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
const CLASS_RING: Record<number, string> = { 1: '#f8fafc', 2: '#f59e0b', 3: 'transparent', 0: 'transparent' };

export function statusGroup(s: string): 'on' | 'off' | 'unknown' {
  if (s === 'ON') return 'on';
  if (s === 'OFF' || s === 'VLOST' || s === 'DEFECT') return 'off';
  return 'unknown';
}

type Props = { i: number; g: number };
type Agg = { on: number; off: number; unk: number; c1: number };

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

export default function MapPage() {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const focus = params.get('focus');
  const el = useRef<HTMLDivElement>(null);
  const map = useRef<L.Map | null>(null);
  const layers = useRef<{ items: ItemLayer; bounds: L.LayerGroup; link: L.LayerGroup; tip: L.Tooltip; divisions: L.LayerGroup; incidents: L.LayerGroup; members: L.LayerGroup; svg: L.Renderer } | null>(null);
  // loaded division boundaries replace the hulls estimated from the points
  const hasBoundaries = useRef(false);
  const divisionBand = useRef(-1);
  const stats = useRef({ divisions: 0, divisionsBand: -1, incidents: null as number | null, members: null as number | null, tilesLoaded: 0, tileErrors: 0 });
  const index = useRef<Supercluster<Props, Agg> | null>(null);
  const lastFull = useRef(0);
  const shown = useRef<Pt[]>([]);
  const fitted = useRef(false);
  const userMoved = useRef(false);
  const lastBuild = useRef(0);
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

  // ---- map set-up ----------------------------------------------------------------------------
  useEffect(() => {
    if (!el.current) return;
    const m = L.map(el.current, { preferCanvas: true, zoomControl: false, minZoom: 3, maxZoom: 19, zoomSnap: 0.5, worldCopyJump: false, attributionControl: true });
    m.attributionControl.setPrefix(false);
    L.control.zoom({ position: 'bottomright' }).addTo(m);
    L.control.scale({ position: 'bottomright', imperial: false }).addTo(m);
    m.createPane('bounds').style.zIndex = '350';
    m.setView([31.85, 117.25], 5);
    const items = itemLayer();
    m.createPane('incidents').style.zIndex = '620';
    layers.current = {
      bounds: L.layerGroup().addTo(m),
      items,
      link: L.layerGroup().addTo(m),
      tip: L.tooltip({ direction: 'top', offset: [0, -8] }),
      divisions: L.layerGroup().addTo(m),
      incidents: L.layerGroup().addTo(m),
      members: L.layerGroup().addTo(m),
      // SVG for the outlines: few shapes, crisp at any zoom, and each one a findable element
      svg: L.svg({ pane: 'bounds' }),
    };
    m.addLayer(items);
    map.current = m;
    window.__xueliangMap = m;
    window.__xueliangPointStatus = (id: string) => pointsStore.get().points.find((p) => p.id === id)?.s;
    void consoleConfig().then((cfg) => {
      const layer = basemapLayer(cfg);
      if (layer && cfg.tile_url) {
        layer.on('tileload', () => publishLayers({ tilesLoaded: stats.current.tilesLoaded + 1 }));
        layer.on('tileerror', () => publishLayers({ tileErrors: stats.current.tileErrors + 1 }));
        layer.addTo(m);
        setTileUrl(cfg.tile_auth ? `${tNow('map.platformBasemap')} · ${cfg.tile_url}` : cfg.tile_url);
      }
      if (cfg.center && !fitted.current && pointsStore.get().points.length === 0) m.setView([cfg.center[1], cfg.center[0]], cfg.zoom ?? 12);
    });
    const onMove = () => {
      renderRef.current();
      divisionsRef.current();
    };
    m.on('moveend', onMove);
    const onClick = (e: L.LeafletMouseEvent) => clickRef.current(e);
    m.on('click', onClick);
    // hover: a pointer and a name over points, counts over clusters
    let hoverFrame = 0;
    const onHover = (ev: MouseEvent) => {
      if (hoverFrame) return;
      hoverFrame = requestAnimationFrame(() => {
        hoverFrame = 0;
        const ly = layers.current;
        if (!ly || !el.current) return;
        const cp = m.mouseEventToContainerPoint(ev);
        const it = ly.items.hit(cp);
        el.current.style.cursor = it ? 'pointer' : '';
        if (!it) {
          m.closeTooltip(ly.tip);
          return;
        }
        const text = it.cluster ? `${it.n} · ${it.on} ${tNow('status.on')} · ${it.off} ${tNow('status.off')}` : escapeHtml(shown.current[it.n]?.name ?? '');
        ly.tip.setLatLng([it.lat, it.lng]).setContent(text);
        if (!m.hasLayer(ly.tip)) m.openTooltip(ly.tip);
      });
    };
    el.current.addEventListener('mousemove', onHover);
    // until the operator touches the map, it keeps fitting the points as they arrive
    const touched = () => (userMoved.current = true);
    for (const ev of ['mousedown', 'wheel', 'touchstart', 'keydown']) el.current.addEventListener(ev, touched, { passive: true });
    void loadPoints();
    overallStatistics()
      .then((st) => setCounties(st.children))
      .catch(() => undefined);
    return () => {
      m.off('moveend', onMove);
      m.off('click', onClick);
      m.remove();
      map.current = null;
      layers.current = null;
      delete window.__xueliangMap;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
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

  // ---- index: rebuild on new points (throttled while loading) and on filter changes ---------
  useEffect(() => {
    // while loading, rebuild the index now and then (more rarely as it grows: a build of
    // 100,000 points takes a few hundred ms of the main thread)
    const since = performance.now() - lastBuild.current;
    const every = shown.current.length > 20000 ? 2500 : 1200;
    if (!ps.done && since < every && shown.current.length > 0) {
      const h = window.setTimeout(() => setBuildTick((x) => x + 1), every - since);
      return () => window.clearTimeout(h);
    }
    build();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ps.version, ps.done, filters, buildTick]);

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
    const idx = new Supercluster<Props, Agg>({
      radius: 64,
      maxZoom: 16,
      minPoints: 3,
      map: (pr) => {
        const g = pr.g;
        return { on: g === 0 ? 1 : 0, off: g === 1 ? 1 : 0, unk: g === 2 ? 1 : 0, c1: 0 };
      },
      reduce: (a, b) => {
        a.on += b.on;
        a.off += b.off;
        a.unk += b.unk;
      },
    });
    const G = { on: 0, off: 1, unknown: 2 } as const;
    idx.load(pts.map((p, i) => ({ type: 'Feature', properties: { i, g: G[statusGroup(p.s)] }, geometry: { type: 'Point', coordinates: [p.x, p.y] } })));
    index.current = idx;
    shown.current = pts;
    lastBuild.current = performance.now();
    const m = map.current;
    if (m && pts.length && !focus && (!fitted.current || (ps.done && !userMoved.current))) {
      fitted.current = true;
      m.fitBounds(boundsOf(pts), { paddingTopLeft: [panelOpen ? 300 : 30, 30], paddingBottomRight: [30, 50], animate: false });
    } else if (pts.length) fitted.current = true;
    render();
    if (ps.done) drawBoundaries();
    if (pts.length && !window.__xueliangMapFirst) window.__xueliangMapFirst = { points: pts.length, ms: Math.round(performance.now()) };
    if (ps.done && !ps.error) {
      window.__xueliangMapReady = {
        points: pts.length,
        total: ps.loaded,
        ms: Math.round(performance.now()),
        loadMs: Math.round((ps.doneAt ?? 0) - ps.startedAt),
        firstMs: ps.firstAt === null ? null : Math.round(ps.firstAt),
        via: ps.via,
        buildMs: Math.round(performance.now() - tb),
      };
    }
  }

  function render() {
    const m = map.current;
    const ly = layers.current;
    const idx = index.current;
    if (!m || !ly || !idx) return;
    const t0 = performance.now();
    const b = m.getBounds().pad(0.15);
    const z = Math.round(m.getZoom());
    const feats = idx.getClusters([Math.max(-180, b.getWest()), Math.max(-85, b.getSouth()), Math.min(180, b.getEast()), Math.min(85, b.getNorth())], z);
    const t1 = performance.now();
    const items: MapItem[] = [];
    const pointItems: MapItem[] = [];
    let nc = 0;
    let np = 0;
    for (const f of feats) {
      const [x, y] = f.geometry.coordinates;
      const pr = f.properties as Partial<ClusterProperties & Agg> & Partial<Props>;
      if (pr.cluster) {
        nc++;
        const n = pr.point_count ?? 0;
        const size = 30 + Math.min(34, Math.log10(n + 1) * 11);
        items.push({ lat: y, lng: x, r: size / 2, cluster: true, n, on: pr.on ?? 0, off: pr.off ?? 0, clusterId: pr.cluster_id });
      } else {
        np++;
        const p = shown.current[pr.i!];
        const g = statusGroup(p.s);
        const sel = p.id === selectedRef.current;
        pointItems.push({
          lat: y,
          lng: x,
          r: p.c === 1 ? 7 : p.c === 2 ? 6 : 5,
          cluster: false,
          n: pr.i!,
          on: 0,
          off: 0,
          fill: STATUS_COLOR[g],
          stroke: sel ? '#38bdf8' : CLASS_RING[p.c] === 'transparent' ? undefined : CLASS_RING[p.c],
          strokeWidth: sel ? 4 : 2,
        });
      }
    }
    ly.items.setItems(showsRef.current.cameras ? items.concat(pointItems) : []);
    el.current?.setAttribute('data-clusters', String(nc));
    el.current?.setAttribute('data-points', String(np));
    window.__xueliangMapView = { clusters: nc, points: np, zoom: z, clusterMs: +(t1 - t0).toFixed(1), drawMs: +(performance.now() - t1).toFixed(1) };
    setView({ clusters: nc, points: np });
  }

  const renderRef = useRef(render);
  renderRef.current = render;
  const selectedRef = useRef<string | null>(null);
  selectedRef.current = selected;

  // one click handler: clusters zoom in, points open, the link mode picks a place
  const clickRef = useRef<(e: L.LeafletMouseEvent) => void>(() => undefined);
  clickRef.current = (e) => {
    const m = map.current;
    const ly = layers.current;
    if (!m || !ly) return;
    const it = ly.items.hit(e.containerPoint);
    if (it?.cluster && !linkModeRef.current) {
      const z = index.current && it.clusterId !== undefined ? index.current.getClusterExpansionZoom(it.clusterId) : m.getZoom() + 2;
      m.setView([it.lat, it.lng], Math.min(z, 18));
      return;
    }
    if (it && !it.cluster) {
      const p = shown.current[it.n];
      if (linkModeRef.current) linkAt(p.x, p.y);
      else setSelected(p.id);
      return;
    }
    if (linkModeRef.current) linkAt(e.latlng.lng, e.latlng.lat);
  };

  // selected point changes its ring: redraw
  useEffect(() => {
    render();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [selected]);

  function drawBoundaries() {
    const ly = layers.current;
    if (!ly) return;
    ly.bounds.clearLayers();
    if (hasBoundaries.current) return;
    const all = ps.points;
    const level = filters.county ? 9 : 6;
    const names = new Map<string, string>();
    for (const c of counties) names.set(c.code, c.name ?? c.code);
    for (const c of townships) names.set(c.code, c.name ?? c.code);
    const groups = new Map<string, XY[]>();
    for (const p of all) {
      if (p.v.length < level) continue;
      if (filters.county && !p.v.startsWith(filters.county)) continue;
      const k = p.v.slice(0, level);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push([p.x, p.y]);
    }
    for (const [code, pts] of groups) {
      if (pts.length < 3) continue;
      const hull = padHull(convexHull(pts), level === 6 ? 0.006 : 0.003);
      const poly = L.polygon(
        hull.map(([x, y]) => [y, x] as [number, number]),
        { pane: 'bounds', color: code === filters.township ? '#38bdf8' : '#64748b', weight: 1.2, dashArray: '5 5', fillColor: '#1e293b', fillOpacity: 0.18, interactive: false },
      );
      poly.bindTooltip(names.get(code) ?? code, { permanent: true, direction: 'center', className: 'div-label' });
      ly.bounds.addLayer(poly);
    }
  }

  useEffect(() => {
    if (ps.done) drawBoundaries();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [counties, townships]);

  // ---- layers: division boundaries, incidents ------------------------------------------------
  const showsRef = useRef(shows);
  showsRef.current = shows;
  useEffect(() => {
    sessionStorage.setItem('xl.mapLayers', JSON.stringify(shows));
    const ly = layers.current;
    const m = map.current;
    if (!ly || !m) return;
    for (const [on, layer] of [[shows.divisions, ly.divisions], [shows.incidents, ly.incidents], [shows.members, ly.members]] as const) {
      if (on && !m.hasLayer(layer)) m.addLayer(layer);
      if (!on && m.hasLayer(layer)) m.removeLayer(layer);
    }
    divisionBand.current = -1; // drawn again for the current zoom when shown
    loadDivisions();
    render();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shows]);

  function publishLayers(patch: Partial<typeof stats.current>) {
    stats.current = { ...stats.current, ...patch };
    window.__xueliangMapLayers = { ...stats.current };
  }

  /** The loaded boundaries for the current zoom band (asked again only when the band changes). */
  function loadDivisions() {
    const m = map.current;
    const ly = layers.current;
    if (!m || !ly || !showsRef.current.divisions) return;
    const band = zoomBand(m.getZoom());
    if (band === divisionBand.current) return;
    divisionBand.current = band;
    fetchDivisions(band)
      .then((fc) => {
        if (divisionBand.current !== band || !layers.current) return;
        const n = drawDivisions(ly.divisions, fc, m.getZoom(), ly.svg);
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
  usePolled(canIncidents && shows.incidents, async () => {
    const list = await fetchIncidents();
    if (layers.current) publishLayers({ incidents: drawIncidents(layers.current.incidents, list) });
  });
  usePolled(canMembers && shows.members, async () => {
    const list = await fetchGridPositions();
    if (layers.current) publishLayers({ members: drawGridPositions(layers.current.members, list) });
  });

  // ---- focus from the URL (?focus=<channel id>) ------------------------------------------------
  useEffect(() => {
    if (!focus) return;
    const p = ps.points.find((x) => x.id === focus);
    if (p && map.current) {
      map.current.setView([p.y, p.x], 17, { animate: false });
      setSelected(p.id);
    } else if (ps.done) setSelected(focus);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focus, ps.done]);

  // ---- 立体化联动: the nearest high, building and street cameras around a place ----------------
  const linkModeRef = useRef(false);
  linkModeRef.current = linkMode;
  useEffect(() => {
    el.current?.classList.toggle('picking', linkMode);
  }, [linkMode]);

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
      m.panTo([lat, lon], { animate: false });
      m.panBy([0, Math.round(m.getSize().y * 0.25)], { animate: false });
    }
  }

  function drawLink(r: NearResult) {
    const ly = layers.current;
    if (!ly) return;
    ly.link.clearLayers();
    L.circle([r.lat, r.lon], { radius: r.radius, color: '#38bdf8', weight: 1, fillOpacity: 0.05, interactive: false }).addTo(ly.link);
    L.circleMarker([r.lat, r.lon], { radius: 6, color: '#38bdf8', fillColor: '#0ea5e9', fillOpacity: 1 }).addTo(ly.link);
    const byId = new Map(pointsStore.get().points.map((p) => [p.id, p]));
    for (const [tier, color] of [['high', '#a78bfa'], ['building', '#f59e0b'], ['street', '#22d3ee']] as const) {
      const c = r[tier][0];
      const p = c && byId.get(c.id);
      if (p) L.polyline([[r.lat, r.lon], [p.y, p.x]], { color, weight: 2, dashArray: '4 4', interactive: false }).addTo(ly.link);
    }
  }

  const progress = ps.total ? Math.min(1, ps.loaded / ps.total) : ps.done ? 1 : 0;
  const toggle = <K extends 'classes' | 'tiers' | 'statuses'>(k: K, v: Filters[K][number]) =>
    setFilters((f) => {
      const arr = f[k] as (typeof v)[];
      return { ...f, [k]: arr.includes(v) ? arr.filter((x) => x !== v) : [...arr, v] };
    });

  return (
    <div className="map-page dark">
      <div ref={el} className="map" data-testid="map" />
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
      {near && <LinkedView r={near} onClose={() => { setNear(null); layers.current?.link.clearLayers(); }} />}
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

function boundsOf(pts: Pt[]): L.LatLngBounds {
  let w = 180, s = 90, e = -180, n = -90;
  for (const p of pts) {
    if (p.x < w) w = p.x;
    if (p.x > e) e = p.x;
    if (p.y < s) s = p.y;
    if (p.y > n) n = p.y;
  }
  return L.latLngBounds([s, w], [n, e]);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
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
