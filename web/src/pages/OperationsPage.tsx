import { useCallback, useEffect, useState } from 'react';
import { api, download } from '../api/client';
import { Empty, ErrorBox } from '../components/Common';
import { fmtDateTime, useT } from '../i18n';
import { consoleConfig } from '../lib/basemap';
import { navigate } from '../lib/router';
import { can, useUser } from '../lib/session';
import { errorText, toast } from '../lib/toast';
import { cityDay, loadRates, loadTickets, loadTimeline, STATUSES, step, type Availability, type ReportRow, type Ticket, type Timeline } from './health';
import { FAULT_CODES, loadCityFaults, type CityFaults } from './diagnosis';

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(2)}%`);

/** 运维看板: rates against targets by class, the ticket board, a point's 30 days, repeat faults, reports. */
export default function OperationsPage() {
  const t = useT();
  const user = useUser();
  const [to, setTo] = useState(cityDay(1));
  const [from, setFrom] = useState(cityDay(7));
  useEffect(() => {
    // a city not at UTC+8: its yesterday, once the platform has said where its day starts
    void consoleConfig().then((c) => {
      if (c.utc_offset_hours == null || c.utc_offset_hours === 8) return;
      setTo(cityDay(1, c.utc_offset_hours));
      setFrom(cityDay(7, c.utc_offset_hours));
    });
  }, []);
  const [rates, setRates] = useState<Availability | null>(null);
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const [repeat, setRepeat] = useState<{ channel_id: string; tickets: number }[]>([]);
  const [point, setPoint] = useState<string | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const reload = useCallback(async () => {
    try {
      setErr(null);
      const [r, tk, rp] = await Promise.all([
        loadRates(from, to),
        loadTickets({ status: STATUSES.join(','), limit: 500 }),
        api<{ channel_id: string; tickets: number }[]>('/health/repeat-points'),
      ]);
      setRates(r);
      setTickets(tk);
      setRepeat(rp);
    } catch (e) {
      setErr(e);
    }
  }, [from, to]);
  useEffect(() => {
    void reload();
  }, [reload]);

  return (
    <div className="page dash" data-testid="operations-page">
      <div className="page-head">
        <h2>{t('ops.title')}</h2>
        <span className="grow" />
        <label className="row gap">
          {t('ops.range')}
          <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="ops-from" />
          <input type="date" value={to} onChange={(e) => setTo(e.target.value)} data-testid="ops-to" />
        </label>
      </div>
      <ErrorBox error={err} />
      <div className="card">
        <div className="card-title">{t('ops.byClass')}</div>
        {rates?.note && <p className="muted" data-testid="ops-no-data">{t('ops.noData')}</p>}
        <div className="kpis" data-testid="ops-rates">
          {(rates?.groups ?? []).map((g) => {
            const target = rates?.targets[String(g.key ?? 3)];
            const bad = target !== undefined && g.intact !== null && g.intact < target;
            return (
              <div key={String(g.key)} className={`kpi ${bad ? 'bad' : ''}`} data-testid={`ops-class-${g.key}`}>
                <div className="kpi-label">{t('ops.class', { n: String(g.key ?? '—') })} · {t('ops.points', { n: g.points })}</div>
                <div className="kpi-value">{pct(g.availability)}</div>
                <div className="kpi-sub">
                  {t('ops.intact')} {pct(g.intact)} · {t('ops.picture')} {pct(g.picture_rate)} · {t('ops.target', { v: target === undefined ? '—' : `${target}%` })}
                </div>
              </div>
            );
          })}
        </div>
      </div>
      <div className="dash-grid">
        <div className="card span2">
          <div className="card-title">{t('ops.board')} <small className="muted">{t('ops.tickets', { n: tickets.length })}</small></div>
          {can(user, 'tickets.manage') && <OpenByHand onOpened={(c) => { setPoint(c); void reload(); }} />}
          <div className="board" data-testid="ops-board">
            {STATUSES.map((s) => (
              <div key={s} className="board-col">
                <div className="panel-title">{t(`ops.status.${s}`)}</div>
                {tickets.filter((x) => x.status === s).map((x) => (
                  <button key={x.id} className={`ticket-card ${x.overdue ? 'overdue' : ''}`} onClick={() => setPoint(x.channel_id)} data-testid={`ticket-${x.id}`}>
                    <b>#{x.id}</b> <span className="mono">{x.channel_id}</span>
                    <small>{t(`ops.fault.${x.kind}`)}{x.detail ? ` · ${x.detail}` : ''}</small>
                    <small className="muted">{fmtDateTime(x.opened_at)}</small>
                    {x.overdue && <span className="badge warn">{t('ops.overdue')}</span>}
                    {x.repeat && <span className="badge">{t('ops.repeat')}</span>}
                  </button>
                ))}
              </div>
            ))}
          </div>
        </div>
        <div className="card">
          <div className="card-title">{t('ops.repeatList')}</div>
          {repeat.length === 0 ? <Empty>—</Empty> : (
            <table className="table" data-testid="ops-repeat">
              <tbody>
                {repeat.map((r) => (
                  <tr key={r.channel_id} onClick={() => setPoint(r.channel_id)}>
                    <td className="mono">{r.channel_id}</td>
                    <td className="num">{r.tickets}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="card span3">
          <PictureFaults onPick={setPoint} />
        </div>
        <div className="card span3">
          <div className="card-title">{t('ops.timeline')} {point && <span className="mono">{point}</span>}</div>
          {point ? <PointTimeline id={point} canClose={can(user, 'tickets.manage')} onChange={() => void reload()} /> : <p className="muted">{t('ops.pickPoint')}</p>}
        </div>
        {can(user, 'reports.read') && (
          <div className="card span3">
            <Reports />
          </div>
        )}
      </div>
    </div>
  );
}

function PointTimeline({ id, canClose, onChange }: { id: string; canClose: boolean; onChange: () => void }) {
  const t = useT();
  const [tl, setTl] = useState<Timeline | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    setTl(null);
    loadTimeline(id).then(setTl, setErr);
  }, [id]);
  if (err) return <ErrorBox error={err} />;
  if (!tl) return null;
  const a = new Date(tl.from).getTime();
  const span = new Date(tl.to).getTime() - a;
  return (
    <div>
      <div className="timeline" data-testid="ops-timeline">
        {tl.intervals.map((i, n) => {
          const s = new Date(i.start).getTime();
          const e = new Date(i.end).getTime();
          return (
            <span
              key={n}
              className={`seg ${i.state}`}
              style={{ left: `${((s - a) / span) * 100}%`, width: `${Math.max(((e - s) / span) * 100, 0.15)}%` }}
              title={`${t(`ops.state.${i.state}`)}${i.detail ? ` (${i.detail})` : ''}: ${fmtDateTime(i.start)} — ${fmtDateTime(i.end)}`}
              data-state={i.state}
            />
          );
        })}
        {tl.tickets.map((x) => (
          <span key={x.id} className="tick" style={{ left: `${Math.max(0, (new Date(x.opened_at).getTime() - a) / span) * 100}%` }} title={`#${x.id} ${x.status}`} />
        ))}
      </div>
      <div className="legend row gap">
        {(['online', 'fault', 'offline', 'unknown'] as const).map((s) => (
          <span key={s} className="row gap"><span className={`seg-key ${s}`} /> {t(`ops.state.${s}`)}</span>
        ))}
      </div>
      <table className="table">
        <tbody>
          {tl.tickets.map((x) => (
            <tr key={x.id}>
              <td>#{x.id}</td>
              <td>{t(`ops.status.${x.status}`)}</td>
              <td>{t(`ops.fault.${x.kind}`)}</td>
              <td>{fmtDateTime(x.opened_at)}</td>
              <td className="actions">
                {canClose && x.status !== 'closed' && (
                  <button
                    className="btn small"
                    onClick={async () => {
                      const note = window.prompt(t('ops.note'));
                      if (!note) return;
                      try {
                        await step(x.id, 'close', note);
                        onChange();
                        setTl(await loadTimeline(id));
                      } catch (e) {
                        toast(errorText(e), 'error');
                      }
                    }}
                  >
                    {t('ops.close')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Reports() {
  const t = useT();
  const [rows, setRows] = useState<ReportRow[]>([]);
  const [kind, setKind] = useState('daily');
  const [day, setDay] = useState(cityDay(1));
  const [fmt, setFmt] = useState('xlsx');
  const reload = () => api<ReportRow[]>('/reports').then(setRows, () => setRows([]));
  useEffect(() => {
    void reload();
  }, []);
  return (
    <>
      <div className="card-title">{t('ops.reports')}</div>
      <div className="toolbar">
        <select value={kind} onChange={(e) => setKind(e.target.value)} data-testid="report-kind">
          {['daily', 'weekly', 'monthly'].map((k) => <option key={k} value={k}>{t(`ops.kind.${k}`)}</option>)}
        </select>
        <input type="date" value={day} onChange={(e) => setDay(e.target.value)} data-testid="report-date" />
        <select value={fmt} onChange={(e) => setFmt(e.target.value)}>
          <option value="xlsx">xlsx</option>
          <option value="pdf">PDF</option>
        </select>
        <button
          className="btn small primary"
          data-testid="report-generate"
          onClick={async () => {
            try {
              await api('/reports', { method: 'POST', body: { kind, date: day, format: fmt } });
              await reload();
            } catch (e) {
              toast(errorText(e), 'error');
            }
          }}
        >
          {t('ops.generate')}
        </button>
      </div>
      <div className="table-wrap">
        <table className="table" data-testid="report-archive">
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>{t(`ops.kind.${r.kind}`)}</td>
                <td>{r.from === r.to ? r.from : `${r.from} — ${r.to}`}</td>
                <td>{r.format}</td>
                <td className="muted">{fmtDateTime(r.created_at)} · {r.created_by}</td>
                <td className="actions">
                  <button className="btn small" onClick={() => void download(`/reports/${r.id}`, `${r.kind}-${r.from}.${r.format}`)}>⤓</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** 人工报修: a fault the platform cannot see (a dirty lens, a camera turned away) gets a ticket by
 * hand, assigned like any other to the point's maintenance team. */
function OpenByHand({ onOpened }: { onOpened: (channelId: string) => void }) {
  const t = useT();
  const [channel, setChannel] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  async function open() {
    setBusy(true);
    try {
      const x = await api<Ticket>('/tickets', { method: 'POST', body: { channel_id: channel.trim(), note: note.trim() } });
      toast(t('ops.opened', { n: x.id }), 'ok');
      setNote('');
      onOpened(x.channel_id);
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="row gap" onSubmit={(e) => { e.preventDefault(); void open(); }} data-testid="ops-open">
      <input className="mono" placeholder={t('ops.openChannel')} value={channel} onChange={(e) => setChannel(e.target.value)} maxLength={20} data-testid="ops-open-channel" />
      <input className="grow" placeholder={t('ops.openNote')} value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} data-testid="ops-open-note" />
      <button className="btn small" disabled={busy || !channel.trim() || !note.trim()} data-testid="ops-open-submit">{t('ops.openByHand')}</button>
    </form>
  );
}

/** 画面故障: the confirmed picture faults of the points in view, by class and county; a point
 * opens on the board (its timeline and tickets) or on its own page. */
function PictureFaults({ onPick }: { onPick: (id: string) => void }) {
  const t = useT();
  const [f, setF] = useState<CityFaults | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    loadCityFaults().then(setF, setErr);
  }, []);
  const row = (counts: Record<string, number>) => FAULT_CODES.map((c) => <td key={c} className="num">{counts[c] ?? ''}</td>);
  return (
    <div data-testid="ops-picture-faults">
      <div className="card-title">{t('diag.cityTitle')} {f && <small className="muted">{t('diag.inspected', { n: f.inspected, m: f.faulty })}</small>}</div>
      <ErrorBox error={err} />
      {f && f.faulty > 0 && (
        <>
          <table className="table">
            <thead>
              <tr><th />{FAULT_CODES.map((c) => <th key={c}>{t(`fault.${c}`)}</th>)}</tr>
            </thead>
            <tbody>
              {Object.entries(f.by_class).map(([k, v]) => (
                <tr key={`c${k}`} data-testid={`diag-class-${k}`}>
                  <td>{k === 'unclassified' ? t('diag.unclassified') : t('ops.class', { n: k })}</td>{row(v)}
                </tr>
              ))}
              {Object.entries(f.by_division).map(([k, v]) => (
                <tr key={`d${k}`} data-testid={`diag-county-${k}`}><td className="mono">{k}</td>{row(v)}</tr>
              ))}
            </tbody>
          </table>
          <table className="table" data-testid="diag-channels">
            <tbody>
              {f.channels.map((c) => (
                <tr key={c.channel_id}>
                  <td><button className="link" onClick={() => onPick(c.channel_id)} data-testid={`diag-pick-${c.channel_id}`}>{c.name || c.channel_id}</button></td>
                  <td className="mono">{c.channel_id}</td>
                  <td>{c.confirmed.map((x) => <span key={x} className="badge warn">{t(`fault.${x}`)}</span>)}</td>
                  <td><button className="btn small" onClick={() => navigate(`/app/channel/${c.channel_id}`)}>{t('wall.details')}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
