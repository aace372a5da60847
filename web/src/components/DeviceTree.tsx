import { useEffect, useMemo, useRef, useState, type DragEvent } from 'react';
import { allPages, api, ApiError, qs } from '../api/client';
import type { Channel, Device, Division, Page, Statistics, Unit } from '../api/types';
import { useT } from '../i18n';
import { useUser } from '../lib/session';
import { errorText } from '../lib/toast';
import { StatusDot } from './Common';

export const DRAG_TYPE = 'application/x-xueliang-channel';

export interface TreeProps {
  onSelect?: (c: Channel) => void;
  onOpen?: (c: Channel) => void;
  selectedId?: string | null;
  /** Seconds between refreshes of the online state of what is open. */
  refreshSeconds?: number;
}

export function dragChannel(e: DragEvent, c: Pick<Channel, 'id' | 'name'> & Partial<Channel>): void {
  e.dataTransfer.setData(DRAG_TYPE, JSON.stringify({ id: c.id, name: c.name, status: c.status, ptz_type: c.ptz_type }));
  e.dataTransfer.setData('text/plain', c.id);
  e.dataTransfer.effectAllowed = 'copy';
}

/** Division → unit → device → (215/216 group →) channel, loaded as it opens; online state live. */
export function DeviceTree({ onSelect, onOpen, selectedId, refreshSeconds = 20 }: TreeProps) {
  const t = useT();
  const user = useUser();
  const [roots, setRoots] = useState<Division[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [q, setQ] = useState('');
  const [results, setResults] = useState<Channel[] | null>(null);
  const [tick, setTick] = useState(0);
  const [searching, setSearching] = useState(false);

  useEffect(() => {
    const h = window.setInterval(() => setTick((x) => x + 1), refreshSeconds * 1000);
    return () => window.clearInterval(h);
  }, [refreshSeconds]);

  useEffect(() => {
    (async () => {
      try {
        if (user?.division_code) {
          setRoots([await api<Division>(`/divisions/${user.division_code}`)]);
          return;
        }
        const all = await allPages<Division>('/divisions', { limit: 1000, in_use: 'true' }, 1000);
        const codes = new Set(all.map((d) => d.code));
        let top = all.filter((d) => !d.parent_code || !codes.has(d.parent_code));
        // skip single-child chains (province → city) so the first view is useful
        while (top.length === 1) {
          const kids = await allPages<Division>('/divisions', { parent: top[0].code, limit: 1000, in_use: 'true' });
          if (kids.length === 0) break;
          top = kids;
        }
        setRoots(top);
      } catch (e) {
        setError(e);
      }
    })();
  }, [user?.division_code]);

  useEffect(() => {
    const s = q.trim();
    if (!s) {
      setResults(null);
      return;
    }
    setSearching(true);
    const h = window.setTimeout(async () => {
      try {
        const r = await api<Page<Channel>>(`/channels${qs({ q: s, limit: 100 })}`);
        setResults(r.items);
      } catch (e) {
        setError(e);
      } finally {
        setSearching(false);
      }
    }, 250);
    return () => window.clearTimeout(h);
  }, [q]);

  const ctx: Ctx = { onSelect, onOpen, selectedId, tick, department: user?.department ?? null };

  return (
    <div className="tree" data-testid="device-tree">
      <div className="tree-search">
        <input
          type="search"
          placeholder={t('tree.search')}
          value={q}
          onChange={(e) => setQ(e.target.value)}
          data-testid="tree-search"
        />
      </div>
      {error ? <div className="error-box small">{errorText(error)}</div> : null}
      <div className="tree-body">
        {results ? (
          <div className="tree-results" data-testid="tree-results">
            <div className="tree-hint">
              {searching ? t('common.loading') : t('tree.results', { n: results.length })}
            </div>
            {results.map((c) => (
              <ChannelItem key={c.id} c={c} ctx={ctx} depth={0} showPath />
            ))}
          </div>
        ) : roots ? (
          <>
            <PlatformsNode ctx={ctx} />
            {roots.map((d) => <DivisionNode key={d.code} d={d} ctx={ctx} depth={0} open={roots.length === 1} />)}
          </>
        ) : (
          <div className="tree-hint"><span className="spinner" /> {t('common.loading')}</div>
        )}
      </div>
      <div className="tree-foot muted">{t('tree.dragHint')}</div>
    </div>
  );
}

interface Ctx {
  onSelect?: (c: Channel) => void;
  onOpen?: (c: Channel) => void;
  selectedId?: string | null;
  tick: number;
  department: string | null;
}

function Caret({ open, onClick }: { open: boolean; onClick: () => void }) {
  return (
    <button className={`caret ${open ? 'open' : ''}`} onClick={onClick} tabIndex={-1} aria-label="toggle">
      ▸
    </button>
  );
}

/** Load what an open node shows, again when `deps` change; `alive()` says the answer is still
 *  wanted (the node is open and nothing newer was asked for). */
function useWhileOpen(open: boolean, deps: unknown[], load: (alive: () => boolean) => Promise<void>) {
  useEffect(() => {
    if (!open) return;
    let gone = false;
    void load(() => !gone);
    return () => {
      gone = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, ...deps]);
}

function DivisionNode({ d, ctx, depth, open: startOpen = false, counts }: { d: Division; ctx: Ctx; depth: number; open?: boolean; counts?: { points: number; online: number } }) {
  const [open, setOpen] = useState(startOpen);
  const [kids, setKids] = useState<Division[] | null>(null);
  const [units, setUnits] = useState<Unit[] | null>(null);
  const [stats, setStats] = useState<Map<string, { points: number; online: number }>>(new Map());
  const t = useT();

  useWhileOpen(open, [d.code, ctx.tick], async (alive) => {
    // the online counts of the children, refreshed with the tree
    api<Statistics>(`/statistics${qs({ division: d.code })}`)
      .then((st) => alive() && setStats(new Map(st.children.map((c) => [c.code, { points: c.points, online: c.online }]))))
      .catch(() => undefined);
    try {
      if (!kids) {
        const ks = await allPages<Division>('/divisions', { parent: d.code, limit: 1000, in_use: 'true' }, 5000);
        if (alive()) setKids(ks);
      }
      if (!units) {
        const us = await api<Page<Unit>>(`/units${qs({ division: d.code, department: ctx.department, limit: 500 })}`);
        if (alive()) setUnits(us.items.filter((u) => u.division_code === d.code));
      }
    } catch {
      if (alive()) {
        setKids((k) => k ?? []);
        setUnits((u) => u ?? []);
      }
    }
  });

  return (
    <div className="tnode">
      <div className="trow division" style={{ paddingLeft: 6 + depth * 14 }} onClick={() => setOpen(!open)}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className="ticon">▦</span>
        <span className="tname">{d.name}</span>
        {counts && (
          <span className="tcount" title={t('tree.onlineOfTotal')}>
            {counts.online}/{counts.points}
          </span>
        )}
      </div>
      {open && (
        <div>
          {kids === null && units === null && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}><span className="spinner" /></div>}
          {kids?.map((k) => <DivisionNode key={k.code} d={k} ctx={ctx} depth={depth + 1} counts={stats.get(k.code)} />)}
          {units?.map((u) => <UnitNode key={u.id} u={u} ctx={ctx} depth={depth + 1} />)}
          {kids?.length === 0 && units?.length === 0 && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}>{t('tree.empty')}</div>}
        </div>
      )}
    </div>
  );
}

function UnitNode({ u, ctx, depth }: { u: Unit; ctx: Ctx; depth: number }) {
  const [open, setOpen] = useState(false);
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const t = useT();
  useWhileOpen(open, [u.id, ctx.tick], async (alive) => {
    try {
      const [ds, cs] = await Promise.all([
        allPages<Device>('/devices', { unit_id: u.id, limit: 1000 }, 5000),
        // every kind: cameras and the 215/216 groups of catalogs
        allPages<Channel>(`/channels?kind=`, { unit_id: u.id, limit: 1000 }, 20000),
      ]);
      if (alive()) {
        setDevices(ds);
        setChannels(cs);
      }
    } catch (e) {
      if (alive()) setErr(e instanceof ApiError ? e.message : String(e));
    }
  });

  const byDevice = useMemo(() => {
    const m = new Map<string, Channel[]>();
    for (const c of channels ?? []) {
      const k = c.device_id ?? '';
      if (!m.has(k)) m.set(k, []);
      m.get(k)!.push(c);
    }
    return m;
  }, [channels]);
  const cams = (channels ?? []).filter((c) => c.kind === 'camera');
  const on = cams.filter((c) => c.status === 'ON').length;

  return (
    <div className="tnode">
      <div className="trow unit" style={{ paddingLeft: 6 + depth * 14 }} onClick={() => setOpen(!open)} title={u.address ?? ''}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className="ticon">⌂</span>
        <span className="tname">{u.name}</span>
        {channels && <span className="tcount">{on}/{cams.length}</span>}
      </div>
      {open && (
        <div>
          {err && <div className="tree-hint error">{err}</div>}
          {devices === null && !err && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}><span className="spinner" /></div>}
          {devices?.map((d) => <DeviceNode key={d.id} d={d} channels={byDevice.get(d.id) ?? []} ctx={ctx} depth={depth + 1} />)}
          {(byDevice.get('') ?? []).length > 0 && (
            <ChannelList channels={byDevice.get('')!} ctx={ctx} depth={depth + 1} />
          )}
          {devices?.length === 0 && (byDevice.get('') ?? []).length === 0 && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}>{t('tree.empty')}</div>}
        </div>
      )}
    </div>
  );
}

function DeviceNode({ d, channels, ctx, depth }: { d: Device; channels: Channel[]; ctx: Ctx; depth: number }) {
  const [open, setOpen] = useState(false);
  const t = useT();
  const cams = channels.filter((c) => c.kind === 'camera');
  return (
    <div className="tnode">
      <div className="trow device" style={{ paddingLeft: 6 + depth * 14 }} onClick={() => setOpen(!open)} title={`${d.id} · ${d.manufacturer ?? ''} ${d.model ?? ''}`}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className={`dot ${d.online ? 'st-on' : 'st-off'}`} title={d.online ? t('status.online') : t('status.offline')} />
        <span className="ticon">▣</span>
        <span className="tname">{d.name || d.id}</span>
        {d.admission === 'pending' && <span className="tag warn">{t('admission.pending')}</span>}
        <span className="tcount">{cams.length}</span>
      </div>
      {open && <ChannelList channels={channels} ctx={ctx} depth={depth + 1} />}
    </div>
  );
}

/** The lower platforms (下级平台) registered to us, each with its own online state and, opened,
 *  its catalog tree (215/216 groups, channels under their parents) as far as the user may see:
 *  shown only when there is one the user may see. */
function PlatformsNode({ ctx }: { ctx: Ctx }) {
  const [open, setOpen] = useState(false);
  const [platforms, setPlatforms] = useState<Device[] | null>(null);
  const t = useT();
  useEffect(() => {
    let gone = false;
    allPages<Device>('/devices', { kind: 'platform', limit: 1000 }, 5000)
      .then((ps) => !gone && setPlatforms(ps))
      .catch(() => !gone && setPlatforms([]));
    return () => {
      gone = true;
    };
  }, [ctx.tick]);
  if (!platforms || platforms.length === 0) return null;
  const on = platforms.filter((p) => p.online).length;
  return (
    <div className="tnode" data-testid="tree-platforms">
      <div className="trow division" style={{ paddingLeft: 6 }} onClick={() => setOpen(!open)}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className="ticon">⇅</span>
        <span className="tname">{t('tree.platforms')}</span>
        <span className="tcount" title={t('tree.onlineOfTotal')}>{on}/{platforms.length}</span>
      </div>
      {open && platforms.map((p) => <PlatformNode key={p.id} d={p} ctx={ctx} depth={1} />)}
    </div>
  );
}

function PlatformNode({ d, ctx, depth }: { d: Device; ctx: Ctx; depth: number }) {
  const [open, setOpen] = useState(false);
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const t = useT();
  useWhileOpen(open, [d.id, ctx.tick], async (alive) => {
    try {
      // every kind: the platform's 215/216 groups and its cameras
      const cs = await allPages<Channel>(`/channels?kind=`, { device_id: d.id, limit: 1000 }, 100000);
      if (alive()) setChannels(cs);
    } catch (e) {
      if (alive()) setErr(e instanceof ApiError ? e.message : String(e));
    }
  });
  return (
    <div className="tnode" data-testid="tree-platform" data-device-id={d.id}>
      <div className="trow device" style={{ paddingLeft: 6 + depth * 14 }} onClick={() => setOpen(!open)} title={d.id}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className={`dot ${d.online ? 'st-on' : 'st-off'}`} title={d.online ? t('status.online') : t('status.offline')} />
        <span className="ticon">▤</span>
        <span className="tname">{d.name || d.id}</span>
        <span className="tag">{t('tree.platform')}</span>
        <span className="tcount">{d.channel_count}</span>
      </div>
      {open && (
        <div>
          {err && <div className="tree-hint error">{err}</div>}
          {channels === null && !err && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}><span className="spinner" /></div>}
          {channels && channels.length === 0 && <div className="tree-hint" style={{ paddingLeft: 20 + depth * 14 }}>{t('tree.empty')}</div>}
          {channels && <ChannelList channels={channels} ctx={ctx} depth={depth + 1} />}
        </div>
      )}
    </div>
  );
}

/** Channels of a device, nested under their 215 business groups / 216 virtual organisations. */
function ChannelList({ channels, ctx, depth }: { channels: Channel[]; ctx: Ctx; depth: number }) {
  const groups = channels.filter((c) => c.kind !== 'camera');
  const groupIds = new Set(groups.map((g) => g.id));
  const top = channels.filter((c) => !c.parent_id || !groupIds.has(c.parent_id));
  return (
    <>
      {top.map((c) =>
        c.kind === 'camera' ? (
          <ChannelItem key={c.id} c={c} ctx={ctx} depth={depth} />
        ) : (
          <GroupNode key={c.id} g={c} all={channels} ctx={ctx} depth={depth} />
        ),
      )}
    </>
  );
}

function GroupNode({ g, all, ctx, depth }: { g: Channel; all: Channel[]; ctx: Ctx; depth: number }) {
  const [open, setOpen] = useState(false);
  const kids = all.filter((c) => c.parent_id === g.id);
  const type = g.id.length === 20 ? g.id.slice(10, 13) : '';
  return (
    <div className="tnode">
      <div className="trow group" style={{ paddingLeft: 6 + depth * 14 }} onClick={() => setOpen(!open)}>
        <Caret open={open} onClick={() => setOpen(!open)} />
        <span className="ticon">{type === '215' ? '◆' : '◇'}</span>
        <span className="tname">{g.name}</span>
        <span className="tcount">{kids.length}</span>
      </div>
      {open &&
        kids.map((c) =>
          c.kind === 'camera' ? <ChannelItem key={c.id} c={c} ctx={ctx} depth={depth + 1} /> : <GroupNode key={c.id} g={c} all={all} ctx={ctx} depth={depth + 1} />,
        )}
    </div>
  );
}

function ChannelItem({ c, ctx, depth, showPath }: { c: Channel; ctx: Ctx; depth: number; showPath?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const t = useT();
  return (
    <div
      ref={ref}
      className={`trow channel ${ctx.selectedId === c.id ? 'selected' : ''}`}
      style={{ paddingLeft: 22 + depth * 14 }}
      draggable
      onDragStart={(e) => dragChannel(e, c)}
      onClick={() => ctx.onSelect?.(c)}
      onDoubleClick={() => ctx.onOpen?.(c)}
      title={`${c.id}\n${c.address ?? ''}`}
      data-channel-id={c.id}
      data-status={c.status}
      data-testid="tree-channel"
    >
      <StatusDot status={c.status} />
      <span className="ticon cam">{c.ptz_type === 1 ? '◉' : '●'}</span>
      <span className="tname">
        <span className="tlabel">{c.name}</span>
        {showPath && <small className="tpath">{c.address ?? ''} · {c.id}</small>}
      </span>
      {c.point_class ? <span className={`cls c${c.point_class}`} title={t('class.title')}>{['', 'Ⅰ', 'Ⅱ', 'Ⅲ'][c.point_class]}</span> : null}
    </div>
  );
}
