import { useCallback, useEffect, useState } from 'react';
import { api, withQs } from '../api/client';
import { Empty, ErrorBox } from '../components/Common';
import { fmtDateTime, useT } from '../i18n';
import { can, useUser } from '../lib/session';
import { errorText, toast } from '../lib/toast';

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
  flagged: boolean;
  created_at: string;
  dispatches?: Dispatch[];
  steps?: Step[];
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
  const reload = useCallback(() => {
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
      <ErrorBox error={err} />
      {queue && queue.items.length === 0 && <Empty>{t('inc.none')}</Empty>}
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
  const [x, setX] = useState<Incident | null>(null);
  const [cams, setCams] = useState<Camera[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [dept, setDept] = useState('');
  const [note, setNote] = useState('');
  const load = useCallback(() => {
    api<Incident>(`/incidents/${id}`).then(setX, setErr);
    api<{ items: Camera[] }>(withQs(`/incidents/${id}/cameras`, { radius: 1000, limit: 12 })).then((r) => setCams(r.items), () => setCams([]));
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
  return (
    <div className="card" data-testid="inc-detail">
      <div className="card-title">#{x.id} {x.category} · {t(`inc.status.${x.status}`)}</div>
      <p>{x.description}</p>
      <div className="muted">{x.division_code ?? '—'} ({t(`inc.basis.${x.division_basis}`)}){x.address ? ` · ${x.address}` : ''}</div>
      <h4>{t('inc.dispatches')}</h4>
      <ul data-testid="inc-dispatches">
        {(x.dispatches ?? []).map((d) => (
          <li key={d.id}>{d.department} · {t(`inc.dstatus.${d.status}`)} · {t('inc.deadline')} {fmtDateTime(d.deadline)}{d.overdue ? ` · ${t('inc.overdue')}` : ''}{d.feedback ? ` · ${d.feedback}` : ''}</li>
        ))}
      </ul>
      {centre && x.status !== 'closed' && x.status !== 'merged' && (
        <div className="row gap wrap">
          <input placeholder={t('inc.department')} value={dept} onChange={(e) => setDept(e.target.value)} data-testid="inc-dept" />
          <input placeholder={t('inc.note')} value={note} onChange={(e) => setNote(e.target.value)} data-testid="inc-note" />
          <button className="btn primary" disabled={!dept.trim()} onClick={() => void act('/dispatch', { departments: [{ department: dept.trim() }], note })} data-testid="inc-dispatch">{t('inc.dispatch')}</button>
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
      <h4>{t('inc.cameras')}</h4>
      <ul data-testid="inc-cameras">
        {(cams ?? []).map((c) => <li key={c.id}><a href={`/app/channel/${c.id}`}>{c.name}</a> · {c.tier ? t(`tier.${c.tier}`) : '—'} · {Math.round(c.distance)} m</li>)}
      </ul>
      <h4>{t('inc.steps')}</h4>
      <ol data-testid="inc-steps">
        {(x.steps ?? []).map((s) => <li key={s.id}>{fmtDateTime(s.at)} · {t(`inc.step.${s.step}`)} · {s.actor}{s.department ? ` → ${s.department}` : ''}{s.note ? ` · ${s.note}` : ''}</li>)}
      </ol>
    </div>
  );
}
