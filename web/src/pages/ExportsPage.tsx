import { useCallback, useEffect, useState } from 'react';
import { api, API, raw } from '../api/client';
import { Empty, ErrorBox } from '../components/Common';
import { fmtDateTime, useT } from '../i18n';
import { useLocation } from '../lib/router';
import { can, useUser } from '../lib/session';
import { errorText, toast } from '../lib/toast';

interface EvidenceExport {
  id: number;
  state: 'queued' | 'running' | 'done' | 'failed';
  progress: number;
  error: string | null;
  requester: string;
  channel_ids: string[];
  start: string;
  end: string;
  purpose: string;
  case_number: string;
  watermark: boolean;
  approver: string | null;
  hold_id: number | null;
  created_at: string;
  finished_at: string | null;
  files: string[];
}

interface Hold {
  id: number;
  case_number: string;
  channel_ids: string[];
  start: string;
  end: string;
  reason: string;
  created_by: string;
  created_at: string;
  export_id: number | null;
  active: boolean;
  released_at: string | null;
  released_by: string | null;
  release_note: string | null;
}

function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** 证据导出: exports of recordings (create, follow, download their files), the key that signs
 *  their manifests, and evidence holds (证据锁定) with their release. */
export default function ExportsPage() {
  const t = useT();
  const user = useUser();
  const [items, setItems] = useState<EvidenceExport[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const reload = useCallback(() => api<EvidenceExport[]>('/exports').then((x) => {
    setItems(x);
    setErr(null);
  }, setErr), []);
  useEffect(() => {
    void reload();
  }, [reload]);
  // follow the jobs not finished yet
  const pending = (items ?? []).some((e) => e.state === 'queued' || e.state === 'running');
  useEffect(() => {
    if (!pending) return;
    const h = window.setInterval(() => void reload(), 1000);
    return () => window.clearInterval(h);
  }, [pending, reload]);

  return (
    <div className="page exports-page" data-testid="exports-page">
      <h2>{t('exports.title')}</h2>
      <NewExport onCreated={() => void reload()} />
      <h3>{t('exports.list')}</h3>
      <ErrorBox error={err} />
      {items && items.length === 0 && <Empty>{t('exports.none')}</Empty>}
      {(items ?? []).map((e) => <ExportCard key={e.id} e={e} />)}
      <PublicKey />
      {can(user, 'evidence.hold') && <Holds version={(items ?? []).map((e) => `${e.id}${e.state}`).join()} />}
    </div>
  );
}

function NewExport({ onCreated }: { onCreated: () => void }) {
  const t = useT();
  const { params } = useLocation();
  const now = new Date();
  const [channels, setChannels] = useState(params.get('channel') ?? '');
  const [from, setFrom] = useState(localInput(new Date(now.getTime() - 3600_000)));
  const [to, setTo] = useState(localInput(now));
  const [purpose, setPurpose] = useState('');
  const [caseNo, setCaseNo] = useState('');
  const [watermark, setWatermark] = useState(false);
  const [hold, setHold] = useState(true);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    const ids = channels.split(/[\s,，;；]+/).filter(Boolean);
    const a = new Date(from);
    const b = new Date(to);
    if (!ids.length || !(b > a) || !purpose.trim() || !caseNo.trim()) {
      toast(t('exports.incomplete'), 'error');
      return;
    }
    setBusy(true);
    try {
      const e = await api<EvidenceExport>('/exports', {
        method: 'POST',
        body: { channels: ids, start: a.toISOString(), end: b.toISOString(), purpose: purpose.trim(), case_number: caseNo.trim(), watermark, hold },
      });
      toast(t('exports.created', { id: e.id }), 'ok');
      onCreated();
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="card form" data-testid="export-form">
      <div className="card-title">{t('exports.create')}</div>
      <label>
        {t('exports.channels')}
        <input value={channels} onChange={(e) => setChannels(e.target.value)} placeholder="34020000001310000001, …" className="mono" data-testid="export-channels" />
      </label>
      <div className="row">
        <label>
          {t('exports.start')}
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="export-start" />
        </label>
        <label>
          {t('exports.end')}
          <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} data-testid="export-end" />
        </label>
      </div>
      <label>
        {t('exports.purpose')}
        <input value={purpose} onChange={(e) => setPurpose(e.target.value)} data-testid="export-purpose" />
      </label>
      <label>
        {t('exports.case')}
        <input value={caseNo} onChange={(e) => setCaseNo(e.target.value)} data-testid="export-case" />
      </label>
      <div className="row">
        <label className="chk">
          <input type="checkbox" checked={watermark} onChange={(e) => setWatermark(e.target.checked)} data-testid="export-watermark" />
          {t('exports.watermark')}
        </label>
        <label className="chk">
          <input type="checkbox" checked={hold} onChange={(e) => setHold(e.target.checked)} />
          {t('exports.hold')}
        </label>
      </div>
      <button className="btn primary" disabled={busy} onClick={() => void submit()} data-testid="export-submit">{t('exports.submit')}</button>
    </div>
  );
}

function ExportCard({ e }: { e: EvidenceExport }) {
  const t = useT();
  /** A plain link with a media token of this export: the browser saves the file (an hour of
   *  video is about 900 MB) and shows its progress, nothing held in the page. */
  const get = async (name: string) => {
    try {
      const r = await api<{ token: string }>(`/exports/${e.id}/media-token`, { method: 'POST' });
      const link = document.createElement('a');
      link.href = `${API}/exports/${e.id}/files/${encodeURIComponent(name)}?token=${encodeURIComponent(r.token)}`;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
    } catch (x) {
      toast(errorText(x), 'error', 7000);
    }
  };
  return (
    <div className="card export" data-testid={`export-${e.id}`}>
      <div className="card-title">
        #{e.id} · {e.case_number}
        <span className="grow" />
        <span className={`badge ${e.state === 'failed' ? 'warn' : ''}`} data-testid="export-state">{t(`exports.state.${e.state}`)}</span>
      </div>
      <div className="muted">
        <span className="mono">{e.channel_ids.join(', ')}</span> · {fmtDateTime(e.start)} – {fmtDateTime(e.end)}
      </div>
      <div className="muted">
        {e.purpose} · {e.requester}{e.approver ? ` · ${t('exports.approver')} ${e.approver}` : ''}{e.watermark ? ` · ${t('exports.watermark')}` : ''}{e.hold_id ? ` · ${t('exports.held', { id: e.hold_id })}` : ''}
      </div>
      {(e.state === 'queued' || e.state === 'running') && (
        <progress max={1} value={e.progress} data-testid="export-progress" />
      )}
      {e.error && <div className="error-box">{e.error}</div>}
      {e.files.length > 0 && (
        <ul className="export-files" data-testid="export-files">
          {e.files.map((f) => (
            <li key={f}>
              <a href={`#${f}`} onClick={(ev) => { ev.preventDefault(); void get(f); }} className="mono">{f}</a>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function PublicKey() {
  const t = useT();
  const [key, setKey] = useState<{ pem: string; id: string } | null>(null);
  useEffect(() => {
    raw('/exports/public-key', { headers: { Accept: 'application/x-pem-file' } })
      .then(async (r) => setKey({ pem: await r.text(), id: r.headers.get('x-key-sha256') ?? '' }))
      .catch(() => setKey(null));
  }, []);
  if (!key) return null;
  return (
    <details className="card public-key" data-testid="export-public-key">
      <summary>{t('exports.publicKey')} <span className="mono muted">{key.id}</span></summary>
      <p className="muted">{t('exports.verifyHint')}</p>
      <pre className="mono">{key.pem}</pre>
    </details>
  );
}

/** `version` changes when the exports do (an export places a hold): the list is read again. */
function Holds({ version }: { version: string }) {
  const t = useT();
  const user = useUser();
  const [items, setItems] = useState<Hold[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const reload = useCallback(() => api<Hold[]>('/holds').then(setItems, setErr), []);
  useEffect(() => {
    void reload();
  }, [reload, version]);
  const release = async (h: Hold) => {
    const note = window.prompt(t('holds.releaseNote', { case: h.case_number }));
    if (note === null) return;
    try {
      await api(`/holds/${h.id}/release`, { method: 'POST', body: { note } });
      toast(t('holds.released', { id: h.id }), 'ok');
      void reload();
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    }
  };
  return (
    <div className="holds" data-testid="holds">
      <h3>{t('holds.title')}</h3>
      <ErrorBox error={err} />
      {items && items.length === 0 && <Empty>{t('holds.none')}</Empty>}
      {items && items.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>#</th><th>{t('exports.case')}</th><th>{t('exports.channels')}</th><th>{t('exports.start')}</th><th>{t('exports.end')}</th><th>{t('holds.reason')}</th><th>{t('holds.by')}</th><th />
            </tr>
          </thead>
          <tbody>
            {items.map((h) => (
              <tr key={h.id} data-testid={`hold-${h.id}`}>
                <td>{h.id}</td>
                <td>{h.case_number}</td>
                <td className="mono">{h.channel_ids.join(', ')}</td>
                <td>{fmtDateTime(h.start)}</td>
                <td>{fmtDateTime(h.end)}</td>
                <td>{h.reason}</td>
                <td>{h.created_by}</td>
                <td>
                  {h.active ? (
                    can(user, 'evidence.release') && <button className="btn small" onClick={() => void release(h)} data-testid="hold-release">{t('holds.release')}</button>
                  ) : (
                    <span className="muted">{t('holds.releasedBy', { by: h.released_by ?? '', at: fmtDateTime(h.released_at) })}</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
