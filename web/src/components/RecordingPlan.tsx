import { useEffect, useState } from 'react';
import { api, API, ApiError } from '../api/client';
import { useT } from '../i18n';
import { can, useUser } from '../lib/session';
import { errorText, toast } from '../lib/toast';
import { navigate } from '../lib/router';

/** A weekly window: ISO days (1 Monday … 7 Sunday) and HH:MM times (xueliang/timetable.py). */
interface Window {
  days: number[];
  start: string;
  end: string;
}

export interface RecordingPlanInfo {
  channel_id: string;
  mode: 'continuous' | 'scheduled' | 'event' | 'off';
  source: string;
  retention_days: number;
  schedule?: Window[];
  pre_seconds?: number;
  post_seconds?: number;
}

const MODES = ['continuous', 'scheduled', 'event', 'off'] as const;
const DAYS = [1, 2, 3, 4, 5, 6, 7];

/** `datetime-local` input value of a date (the browser's time). */
function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A channel's recording plan (录像计划) and where it comes from; editable with
 *  recording.manage; a trigger for event plans (recording.trigger); a download of a range. */
export function RecordingPlan({ channelId }: { channelId: string }) {
  const t = useT();
  const user = useUser();
  const enc = encodeURIComponent(channelId);
  const [plan, setPlan] = useState<RecordingPlanInfo | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [edit, setEdit] = useState(false);
  const [mode, setMode] = useState<RecordingPlanInfo['mode']>('off');
  const [windows, setWindows] = useState<Window[]>([]);
  const [pre, setPre] = useState('');
  const [post, setPost] = useState('');
  const [busy, setBusy] = useState(false);
  const now = new Date();
  const [from, setFrom] = useState(localInput(new Date(now.getTime() - 3600_000)));
  const [to, setTo] = useState(localInput(now));

  const load = () =>
    api<RecordingPlanInfo>(`/channels/${enc}/recording`).then((p) => {
      setPlan(p);
      setErr(null);
    }, setErr);
  useEffect(() => {
    setPlan(null);
    setEdit(false);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [channelId]);

  const startEdit = () => {
    if (!plan) return;
    setMode(plan.mode);
    setWindows(plan.schedule?.length ? plan.schedule.map((w) => ({ ...w, days: [...w.days] })) : [{ days: [1, 2, 3, 4, 5], start: '08:00', end: '18:00' }]);
    setPre(plan.pre_seconds != null ? String(plan.pre_seconds) : '');
    setPost(plan.post_seconds != null ? String(plan.post_seconds) : '');
    setEdit(true);
  };

  const save = async () => {
    const body: Record<string, unknown> = { mode };
    if (mode === 'scheduled') body.schedule = windows;
    if (mode === 'event') {
      if (pre.trim()) body.pre_seconds = Number(pre);
      if (post.trim()) body.post_seconds = Number(post);
    }
    setBusy(true);
    try {
      setPlan(await api<RecordingPlanInfo>(`/channels/${enc}/recording`, { method: 'PUT', body }));
      setEdit(false);
      toast(t('rec.saved'), 'ok');
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    } finally {
      setBusy(false);
    }
  };

  const useDefaults = async () => {
    setBusy(true);
    try {
      await api(`/channels/${enc}/recording`, { method: 'DELETE' });
      setEdit(false);
      await load();
      toast(t('rec.saved'), 'ok');
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    } finally {
      setBusy(false);
    }
  };

  const trigger = async () => {
    try {
      const r = await api<{ pre_seconds: number; post_seconds: number }>(`/channels/${enc}/recording/trigger`, { method: 'POST' });
      toast(t('rec.triggered', { pre: r.pre_seconds, post: r.post_seconds }), 'ok');
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    }
  };

  /** A plain link to the download route with a media token: the browser saves the file and
   *  shows its progress (hours of video are streamed, never held in the page). */
  const download = async () => {
    const a = new Date(from);
    const b = new Date(to);
    if (!(b > a)) {
      toast(t('rec.badRange'), 'error');
      return;
    }
    try {
      const r = await api<{ token: string }>(`/channels/${enc}/recordings/media-token`, { method: 'POST', purposeFor: t('playback.download') });
      const q = new URLSearchParams({ start: a.toISOString(), end: b.toISOString(), token: r.token });
      const link = document.createElement('a');
      link.href = `${API}/channels/${enc}/recordings/download?${q}`;
      link.download = '';
      link.rel = 'noopener';
      document.body.appendChild(link);
      link.click();
      link.remove();
    } catch (e) {
      toast(errorText(e), 'error', 7000);
    }
  };

  if (err) {
    if (err instanceof ApiError && (err.missing || err.refused)) return null;
    return <div className="error-box">{errorText(err)}</div>;
  }
  if (!plan) return null;
  const day = (n: number) => t(`rec.day.${n}`);
  return (
    <div className="card recording-plan" data-testid="recording-plan">
      <div className="card-title">
        {t('rec.title')}
        <span className="grow" />
        {!edit && can(user, 'recording.manage') && (
          <button className="btn small" onClick={startEdit} data-testid="rec-edit">{t('rec.edit')}</button>
        )}
      </div>
      {!edit && (
        <dl className="kv">
          <dt>{t('rec.mode')}</dt>
          <dd data-testid="rec-mode">{t(`rec.mode.${plan.mode}`)}</dd>
          <dt>{t('rec.source')}</dt>
          <dd data-testid="rec-source">{t(`rec.source.${plan.source}`)}</dd>
          <dt>{t('ch.retention')}</dt>
          <dd>{plan.retention_days} {t('common.days')}</dd>
          {plan.mode === 'scheduled' && (
            <>
              <dt>{t('rec.schedule')}</dt>
              <dd>
                {(plan.schedule ?? []).map((w, i) => (
                  <div key={i} className="mono">{w.days.map(day).join(' ')} {w.start}–{w.end}</div>
                ))}
              </dd>
            </>
          )}
          {plan.mode === 'event' && (
            <>
              <dt>{t('rec.prePost')}</dt>
              <dd>{plan.pre_seconds} s / {plan.post_seconds} s</dd>
            </>
          )}
        </dl>
      )}
      {edit && (
        <div className="form rec-form">
          <label>
            {t('rec.mode')}
            <select value={mode} onChange={(e) => setMode(e.target.value as RecordingPlanInfo['mode'])} data-testid="rec-mode-select">
              {MODES.map((m) => <option key={m} value={m}>{t(`rec.mode.${m}`)}</option>)}
            </select>
          </label>
          {mode === 'scheduled' && (
            <div className="rec-windows">
              {windows.map((w, i) => (
                <div key={i} className="rec-window" data-testid="rec-window">
                  {DAYS.map((d) => (
                    <label key={d} className="chk">
                      <input
                        type="checkbox"
                        checked={w.days.includes(d)}
                        onChange={(e) => setWindows(windows.map((x, j) => (j !== i ? x : { ...x, days: e.target.checked ? [...x.days, d].sort() : x.days.filter((y) => y !== d) })))}
                      />
                      {day(d)}
                    </label>
                  ))}
                  <input type="time" value={w.start} onChange={(e) => setWindows(windows.map((x, j) => (j !== i ? x : { ...x, start: e.target.value })))} />
                  –
                  <input type="text" className="mono" size={5} value={w.end} title="HH:MM (24:00)" onChange={(e) => setWindows(windows.map((x, j) => (j !== i ? x : { ...x, end: e.target.value })))} />
                  <button className="btn ghost small" onClick={() => setWindows(windows.filter((_, j) => j !== i))}>×</button>
                </div>
              ))}
              <button className="btn small" onClick={() => setWindows([...windows, { days: [6, 7], start: '00:00', end: '24:00' }])}>{t('rec.addWindow')}</button>
            </div>
          )}
          {mode === 'event' && (
            <div className="row">
              <label>
                {t('rec.pre')}
                <input type="number" min={0} max={120} value={pre} placeholder={t('rec.default')} onChange={(e) => setPre(e.target.value)} data-testid="rec-pre" />
              </label>
              <label>
                {t('rec.post')}
                <input type="number" min={1} max={3600} value={post} placeholder={t('rec.default')} onChange={(e) => setPost(e.target.value)} data-testid="rec-post" />
              </label>
            </div>
          )}
          <div className="row">
            <button className="btn small primary" disabled={busy} onClick={() => void save()} data-testid="rec-save">{t('common.save')}</button>
            {plan.source === 'channel' && <button className="btn small" disabled={busy} onClick={() => void useDefaults()}>{t('rec.useDefaults')}</button>}
            <button className="btn small ghost" onClick={() => setEdit(false)}>{t('common.cancel')}</button>
          </div>
        </div>
      )}
      {!edit && plan.mode === 'event' && can(user, 'recording.trigger') && (
        <button className="btn small warn" onClick={() => void trigger()} data-testid="rec-trigger">{t('rec.trigger')}</button>
      )}
      {can(user, 'media.download') && (
        <div className="rec-download">
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="rec-dl-start" />
          –
          <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} data-testid="rec-dl-end" />
          <button className="btn small" onClick={() => void download()} data-testid="rec-download">{t('rec.download')}</button>
        </div>
      )}
      {can(user, 'media.export') && (
        <button className="btn small ghost" onClick={() => navigate(`/app/exports?channel=${enc}`)} data-testid="rec-to-export">{t('exports.create')}</button>
      )}
    </div>
  );
}
