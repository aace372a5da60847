import { useCallback, useEffect, useRef, useState } from 'react';
import { api, API, ApiError, qs, raw, withQs } from '../api/client';
import { Empty, ErrorBox, Modal } from '../components/Common';
import { isoLocal, PlaybackPanel } from '../components/Playback';
import { Player } from '../components/Player';
import { fmtDateTime, useT } from '../i18n';
import { can, useUser } from '../lib/session';
import { errorText, toast } from '../lib/toast';
import { DispatchDialog } from './IncidentDispatch';
import { IncidentInbox } from './IncidentInbox';
import { IncidentMap } from './IncidentMap';

/** 事件中心: the centre's queue (受理 · 分流 · 督办 · 反馈), or a department's inbox. */
interface Dispatch {
  id: number;
  department: string;
  status: string;
  deadline: string;
  overdue: boolean;
  feedback: string | null;
}
interface Step {
  id: number;
  at: string;
  step: string;
  actor: string;
  department: string | null;
  note: string | null;
}
interface Camera {
  id: string;
  name: string;
  tier: string | null;
  status: string | null;
  distance: number;
}
interface Incident {
  id: number;
  source: string;
  category: string;
  priority: string;
  status: string;
  description: string;
  address: string | null;
  division_code: string | null;
  division_basis: string;
  longitude: number | null;
  latitude: number | null;
  flagged: boolean;
  created_at: string;
  dispatches?: Dispatch[];
  steps?: Step[];
  attachments?: Attachment[];
}
interface Queue {
  items: Incident[];
  next_before: number | null;
  categories: string[];
}

const OPEN = 'received,dispatched,handling,fed_back';

export default function IncidentsPage() {
  const t = useT();
  const user = useUser();
  const [status, setStatus] = useState(OPEN);
  const [flagged, setFlagged] = useState(false);
  const [queue, setQueue] = useState<Queue | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [selected, setSelected] = useState<number | null>(null);
  // bumped on every change, so that the department's inbox is read again with the queue
  const [version, setVersion] = useState(0);
  const reload = useCallback(() => {
    setVersion((v) => v + 1);
    api<Queue>(withQs('/incidents', { status: status || null, flagged: flagged || null, limit: 100 }))
      .then((q) => { setQueue(q); setErr(null); }, setErr);
  }, [status, flagged]);
  useEffect(() => reload(), [reload]);
  const centre = can(user, 'incidents.manage');
  return (
    <div className="page incidents" data-testid="incidents">
      <div className="row gap wrap">
        <h2>{t('inc.title')}</h2>
        <span className="grow" />
        <select value={status} onChange={(e) => setStatus(e.target.value)} data-testid="inc-filter-status">
          <option value={OPEN}>{t('inc.open')}</option>
          <option value="closed">{t('inc.status.closed')}</option>
          <option value="">{t('common.all')}</option>
        </select>
        <label className="row gap"><input type="checkbox" checked={flagged} onChange={(e) => setFlagged(e.target.checked)} /> {t('inc.flagged')}</label>
      </div>
      {can(user, 'incidents.create') && queue && <Intake categories={queue.categories} onDone={reload} />}
      {!centre && can(user, 'incidents.handle') && user?.department && <IncidentInbox department={user.department} version={version} selected={selected} onOpen={setSelected} />}
      <ErrorBox error={err} />
      {queue && queue.items.length === 0 && <Empty>{t('inc.none')}</Empty>}
      {/* the queue and, beside it, its cases on the map (below it on a narrow screen) */}
      <div className={queue && queue.items.length > 0 ? 'inc-split' : ''}>
      <table className="table" data-testid="inc-queue">
        <tbody>
          {(queue?.items ?? []).map((x) => (
            <tr key={x.id} className={selected === x.id ? 'selected' : ''} onClick={() => setSelected(x.id)} data-testid={`inc-row-${x.id}`}>
              <td className="mono">#{x.id}</td>
              <td>{fmtDateTime(x.created_at)}</td>
              <td>{x.category}</td>
              <td>{t(`inc.priority.${x.priority}`)}</td>
              <td data-testid="inc-status">{t(`inc.status.${x.status}`)}</td>
              <td className="mono">{x.division_code ?? '—'}</td>
              <td>{x.flagged ? <span className="badge warn">{t('inc.flag')}</span> : null}</td>
              <td className="muted">{x.description.slice(0, 40)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {queue && queue.items.length > 0 && <IncidentMap items={queue.items} selected={selected} onSelect={setSelected} />}
      </div>
      {selected !== null && <Detail id={selected} centre={centre} handler={can(user, 'incidents.handle')} onChange={reload} />}
    </div>
  );
}

function Intake({ categories, onDone }: { categories: string[]; onDone: () => void }) {
  const t = useT();
  const [category, setCategory] = useState(categories[0] ?? '');
  const [description, setDescription] = useState('');
  const [lon, setLon] = useState('');
  const [lat, setLat] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      const c = await api<Incident>('/incidents', { method: 'POST', body: { category, description, longitude: Number(lon), latitude: Number(lat) } });
      toast(t('inc.received', { id: c.id }), 'ok');
      setDescription('');
      onDone();
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="card row gap wrap" data-testid="inc-intake">
      <b>{t('inc.intake')}</b>
      <select value={category} onChange={(e) => setCategory(e.target.value)} data-testid="inc-category">
        {categories.map((c) => <option key={c} value={c}>{c}</option>)}
      </select>
      <input placeholder={t('inc.description')} value={description} onChange={(e) => setDescription(e.target.value)} data-testid="inc-description" />
      <input placeholder={t('inc.lon')} value={lon} onChange={(e) => setLon(e.target.value)} size={10} data-testid="inc-lon" />
      <input placeholder={t('inc.lat')} value={lat} onChange={(e) => setLat(e.target.value)} size={10} data-testid="inc-lat" />
      <button className="btn primary" disabled={busy || !description.trim() || !lon || !lat} onClick={() => void submit()} data-testid="inc-submit">{t('inc.takeIn')}</button>
    </div>
  );
}

function Detail({ id, centre, handler, onChange }: { id: number; centre: boolean; handler: boolean; onChange: () => void }) {
  const t = useT();
  const user = useUser();
  const [x, setX] = useState<Incident | null>(null);
  const [cams, setCams] = useState<Camera[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [dispatching, setDispatching] = useState(false);
  const [note, setNote] = useState('');
  const load = useCallback(() => {
    api<Incident>(`/incidents/${id}`).then(setX, setErr);
  }, [id]);
  useEffect(() => {
    setCams(null);
    api<{ items: Camera[] }>(withQs(`/incidents/${id}/cameras`, { radius: RADIUS, limit: 20 })).then((r) => setCams(r.items), () => setCams([]));
  }, [id]);
  useEffect(() => load(), [load]);
  const act = async (path: string, body: unknown) => {
    try {
      await api(`/incidents/${id}${path}`, { method: 'POST', body });
      setNote('');
      load();
      onChange();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  if (err) return <ErrorBox error={err} />;
  if (!x) return null;
  const open = x.status !== 'closed' && x.status !== 'merged';
  // who may attach: the centre, the hotline, a department handling it (the API decides in the end)
  const mine = (x.dispatches ?? []).some((d) => d.status === 'dispatched' || d.status === 'handling');
  const mayAttach = centre || can(user, 'incidents.create') || (handler && mine);
  return (
    <div className="card" data-testid="inc-detail">
      <div className="card-title">#{x.id} {x.category} · {t(`inc.status.${x.status}`)}</div>
      <p>{x.description}</p>
      <div className="muted">{x.division_code ?? '—'} ({t(`inc.basis.${x.division_basis}`)}){x.address ? ` · ${x.address}` : ''} · {t('inc.reportedAt')} {fmtDateTime(x.created_at)}</div>
      <h4>{t('inc.dispatches')}</h4>
      <ul data-testid="inc-dispatches">
        {(x.dispatches ?? []).map((d) => (
          <li key={d.id}>{d.department} · {t(`inc.dstatus.${d.status}`)} · {t('inc.deadline')} {fmtDateTime(d.deadline)}{d.overdue ? ` · ${t('inc.overdue')}` : ''}{d.feedback ? ` · ${d.feedback}` : ''}</li>
        ))}
      </ul>
      {centre && open && (
        <div className="row gap wrap">
          <button className="btn primary" onClick={() => setDispatching(true)} data-testid="inc-dispatch">{t('inc.dispatch')}</button>
          <input placeholder={t('inc.note')} value={note} onChange={(e) => setNote(e.target.value)} data-testid="inc-note" />
          <button className="btn" onClick={() => void act('/supervise', { note })}>{t('inc.supervise')}</button>
          {(x.status === 'fed_back' || x.status === 'received') && (
            <button className="btn" disabled={!note.trim()} onClick={() => void act('/close', { note })} data-testid="inc-close">{t('inc.close')}</button>
          )}
        </div>
      )}
      {!centre && handler && (x.dispatches ?? []).filter((d) => d.status === 'dispatched' || d.status === 'handling').map((d) => (
        <div className="row gap wrap" key={d.id} data-testid="inc-my-dispatch">
          {d.status === 'dispatched' && <button className="btn" onClick={() => void act(`/dispatches/${d.id}/acknowledge`, {})} data-testid="inc-ack">{t('inc.acknowledge')}</button>}
          <input placeholder={t('inc.feedbackNote')} value={note} onChange={(e) => setNote(e.target.value)} data-testid="inc-feedback-note" />
          <button className="btn primary" disabled={!note.trim()} onClick={() => void act(`/dispatches/${d.id}/feedback`, { note })} data-testid="inc-feedback">{t('inc.feedback')}</button>
          <button className="btn" disabled={!note.trim()} onClick={() => void act(`/dispatches/${d.id}/return`, { note })}>{t('inc.return')}</button>
        </div>
      ))}
      {dispatching && <DispatchDialog id={x.id} priority={x.priority} onClose={() => setDispatching(false)} onDone={() => { load(); onChange(); }} />}
      <VideoAtHand incident={x} cams={cams} mayAttach={mayAttach && open} onAttached={load} />
      <Attachments incident={x} />
      <h4>{t('inc.steps')}</h4>
      <ol data-testid="inc-steps">
        {(x.steps ?? []).map((s) => <li key={s.id}>{fmtDateTime(s.at)} · {t(`inc.step.${s.step}`)} · {s.actor}{s.department ? ` → ${s.department}` : ''}{s.note ? ` · ${s.note}` : ''}</li>)}
      </ol>
    </div>
  );
}

/** Metres around a case its cameras are looked for in; minutes of recording around its time. */
const RADIUS = 1000;
const AROUND_MIN = 5;
const CLIP_HALF_S = 60;
const TIERS = ['high', 'building', 'street'] as const;

interface Playing {
  stream: string;
  from: Date;
  to: Date;
  source: 'platform' | 'device';
}

/**
 * 视频就近: the cameras around the case, nearest first with their tier (高点 · 楼顶 · 街面, the
 * nearest of each together: 立体联动); the chosen one live, or its recording around the case's
 * time; one click attaches a snapshot or a clip (±1 min around what is shown) to the case.
 */
function VideoAtHand({ incident, cams, mayAttach, onAttached }: { incident: Incident; cams: Camera[] | null; mayAttach: boolean; onAttached: () => void }) {
  const t = useT();
  const user = useUser();
  const [tier, setTier] = useState<string>('');
  const [sel, setSel] = useState<Camera | null>(null);
  const [pb, setPb] = useState<Playing | null>(null);
  const [linked, setLinked] = useState(false);
  const [busy, setBusy] = useState<'' | 'snapshot' | 'clip' | 'playback'>('');
  const wrap = useRef<HTMLDivElement>(null);
  const [video, setVideo] = useState<HTMLVideoElement | null>(null);
  useEffect(() => {
    setSel(null);
    setPb(null);
    setLinked(false);
  }, [incident.id]);
  const list = (cams ?? []).filter((c) => !tier || c.tier === tier);
  const nearestOf = TIERS.map((k) => (cams ?? []).find((c) => c.tier === k)).filter((c): c is Camera => !!c);
  const enc = (c: Camera) => encodeURIComponent(c.id);
  const at = new Date(incident.created_at).getTime();

  const choose = (c: Camera) => {
    setSel(c);
    setPb(null);
    setLinked(false);
  };

  /** The recording of [case − N min, case + N min]: the platform's when it has some, else the device's. */
  async function playback(c: Camera) {
    const from = new Date(at - AROUND_MIN * 60000);
    const to = new Date(Math.min(at + AROUND_MIN * 60000, Date.now()));
    const purposeFor = `${t('playback.title')} · ${c.name}`;
    setBusy('playback');
    try {
      let source: Playing['source'] = 'device';
      try {
        const tl = await api<{ recorded_seconds: number }>(`/channels/${enc(c)}/recordings${qs({ start: isoLocal(from), end: isoLocal(to), device: false })}`, { purposeFor });
        if (tl.recorded_seconds > 0) source = 'platform';
      } catch {
        /* the platform's index is not readable: ask the device */
      }
      const r = await api<{ stream: string }>(`/channels/${enc(c)}/playback`, { method: 'POST', body: { start: isoLocal(from), end: isoLocal(to), source }, purposeFor });
      setPb({ stream: r.stream, from, to, source });
    } catch (e) {
      toast(e instanceof ApiError && e.missing ? t('inc.noRecording') : errorText(e), 'error');
    } finally {
      setBusy('');
    }
  }

  /** Where what is shown is in time: the playback's position, or now when live. */
  function position(): number {
    if (pb && video) return pb.from.getTime() + video.currentTime * 1000;
    return Date.now();
  }

  async function attach(kind: 'snapshot' | 'clip', c: Camera) {
    setBusy(kind);
    try {
      if (kind === 'snapshot') {
        await api(`/incidents/${incident.id}/snapshots`, { method: 'POST', body: { channel_id: c.id }, purposeFor: `${t('inc.attachSnapshot')} · ${c.name}` });
      } else {
        const pos = Math.min(position(), Date.now() - 1000);
        const start = new Date(pos - CLIP_HALF_S * 1000);
        const end = new Date(Math.min(pos + CLIP_HALF_S * 1000, Date.now()));
        await api(`/incidents/${incident.id}/attachments/clip`, {
          method: 'POST',
          body: { channel_id: c.id, start: isoLocal(start), end: isoLocal(end) },
          purposeFor: `${t('inc.attachClip')} · ${c.name}`,
        });
      }
      toast(t(kind === 'snapshot' ? 'inc.snapshotAttached' : 'inc.clipAttached'), 'ok');
      onAttached();
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    } finally {
      setBusy('');
    }
  }

  const counts = (k: string) => (cams ?? []).filter((c) => c.tier === k).length;
  return (
    <div data-testid="inc-video">
      <h4>{t('inc.cameras')} <span className="muted small">{t('inc.withinM', { m: RADIUS })}</span></h4>
      {cams && cams.length === 0 && <div className="muted">{t('inc.noCameras')}</div>}
      {cams && cams.length > 0 && (
        <div className="row gap wrap" data-testid="inc-tiers">
          <button className={`btn small ${tier === '' ? 'on' : ''}`} onClick={() => setTier('')}>{t('common.all')} {cams.length}</button>
          {TIERS.map((k) => (
            <button key={k} className={`btn small ${tier === k ? 'on' : ''}`} disabled={!counts(k)} onClick={() => setTier(k)} data-testid={`inc-tier-${k}`}>{t(`tier.${k}`)} {counts(k)}</button>
          ))}
          {can(user, 'media.live') && nearestOf.length > 1 && (
            <button className={`btn small ${linked ? 'on' : ''}`} onClick={() => { setLinked(!linked); setSel(null); setPb(null); }} data-testid="inc-linked" title={t('inc.linkedTitle')}>{t('inc.linked')}</button>
          )}
        </div>
      )}
      <div style={{ display: 'grid', gridTemplateColumns: sel ? 'minmax(0, 2fr) minmax(0, 3fr)' : 'minmax(0, 1fr)', gap: 12, alignItems: 'start' }}>
      <ul data-testid="inc-cameras" style={{ maxHeight: sel ? 480 : undefined, overflow: 'auto', margin: 0 }}>
        {list.map((c) => (
          <li key={c.id} className={sel?.id === c.id ? 'selected' : ''} data-testid={`inc-camera-${c.id}`}>
            <button className="link" onClick={() => choose(c)}>{c.name}</button> · {c.tier ? t(`tier.${c.tier}`) : '—'} · {Math.round(c.distance)} m{c.status && c.status !== 'ON' ? ` · ${t('inc.offline')}` : ''}
            {' '}<a className="muted small" href={`/app/channel/${c.id}`}>{t('wall.details')}</a>
          </li>
        ))}
      </ul>
      {sel && (
        <div className="card" data-testid="inc-camera-view">
          <div className="row gap wrap">
            <b>{sel.name}</b>
            <span className="muted small">{sel.tier ? t(`tier.${sel.tier}`) : '—'} · {Math.round(sel.distance)} m</span>
            <span className="grow" />
            {pb ? (
              <>
                <span className="badge" data-testid="inc-pb-source">{t(pb.source === 'platform' ? 'playback.platform' : 'playback.device')}</span>
                <button className="btn small" onClick={() => setPb(null)} data-testid="inc-live">● {t('playback.backToLive')}</button>
              </>
            ) : (
              can(user, 'media.playback') && (
                <button className="btn small" disabled={busy !== ''} onClick={() => void playback(sel)} data-testid="inc-playback">{t('inc.playAround', { n: AROUND_MIN })}</button>
              )
            )}
            {mayAttach && can(user, 'media.live') && !pb && (
              <button className="btn small" disabled={busy !== ''} onClick={() => void attach('snapshot', sel)} data-testid="inc-attach-snapshot">{busy === 'snapshot' ? <span className="spinner" /> : null}{t('inc.attachSnapshot')}</button>
            )}
            {mayAttach && can(user, 'media.download') && (
              <button className="btn small" disabled={busy !== ''} onClick={() => void attach('clip', sel)} data-testid="inc-attach-clip" title={t('inc.attachClipTitle')}>{busy === 'clip' ? <span className="spinner" /> : null}{t('inc.attachClip')}</button>
            )}
          </div>
          <div ref={wrap}>
            {can(user, 'media.live') || pb ? (
              <Player
                source={pb ? { kind: 'stream', name: pb.stream, channelId: sel.id } : { kind: 'live', channelId: sel.id }}
                title={sel.name}
                onHandle={() => window.setTimeout(() => setVideo(wrap.current?.querySelector('video') ?? null), 0)}
              />
            ) : (
              <div className="muted">{t('player.noRight')}</div>
            )}
          </div>
          {pb && (
            <PlaybackPanel
              key={sel.id}
              channelId={sel.id}
              name={sel.name}
              stream={pb.stream}
              from={pb.from.toISOString()}
              video={video}
              onPlay={(stream, from, to) => setPb({ stream, from, to, source: pb.source })}
              onLive={() => setPb(null)}
            />
          )}
        </div>
      )}
      </div>
      {linked && (
        <div className="linked-cols" data-testid="inc-linked-view">
          {nearestOf.map((c) => (
            <div className="linked-col" key={c.id}>
              <div className="linked-title">{c.tier ? t(`tier.${c.tier}`) : ''} · {c.name} · {Math.round(c.distance)} m</div>
              <Player source={{ kind: 'live', channelId: c.id }} title={c.name} showStats={false} />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

interface Attachment {
  id: number;
  kind: string;
  content_type: string;
  size: number;
  channel_id: string | null;
  at: string;
  by: string;
  source?: string;
}

/** The case's photos, snapshots and clips: opened in place (fetched with the caller's token). */
function Attachments({ incident }: { incident: Incident }) {
  const t = useT();
  const [shown, setShown] = useState<{ a: Attachment; url: string } | null>(null);
  const items = incident.attachments ?? [];
  async function show(a: Attachment) {
    try {
      const res = await raw(`${API}/incidents/${incident.id}/attachments/${a.id}`, { headers: { Accept: a.content_type } });
      setShown({ a, url: URL.createObjectURL(await res.blob()) });
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }
  return (
    <>
      <h4>{t('inc.attachments')}</h4>
      {items.length === 0 && <div className="muted">{t('inc.noAttachments')}</div>}
      <ul data-testid="inc-attachments">
        {items.map((a) => (
          <li key={a.id} data-kind={a.kind}>
            <button className="link" onClick={() => void show(a)}>{t(`inc.kind.${a.kind}`)} #{a.id}</button>
            {' · '}{fmtDateTime(a.at)} · {a.by}{a.channel_id ? ` · ${a.channel_id}` : ''}{a.source ? ` · ${t(a.source === 'platform' ? 'playback.platform' : 'playback.device')}` : ''} · {(a.size / 1024).toFixed(0)} KB
          </li>
        ))}
      </ul>
      {shown && (
        <Modal
          title={`${t(`inc.kind.${shown.a.kind}`)} #${shown.a.id}`}
          wide
          onClose={() => {
            URL.revokeObjectURL(shown.url);
            setShown(null);
          }}
        >
          {shown.a.content_type.startsWith('video/') ? (
            <video src={shown.url} controls autoPlay muted style={{ width: '100%' }} data-testid="inc-attachment-video" />
          ) : (
            <img src={shown.url} alt="" style={{ maxWidth: '100%' }} data-testid="inc-attachment-image" />
          )}
        </Modal>
      )}
    </>
  );
}
