import { useEffect, useMemo, useRef, useState, type MouseEvent } from 'react';
import { api, API, ApiError, qs, raw, saveBlob, type Purpose } from '../api/client';
import { streamPath } from '../media/token';
import { fmtDateTime, fmtTime, useT } from '../i18n';
import { errorText, toast } from '../lib/toast';
import { Icon } from './Icon';

export interface Recording {
  start: Date;
  end: Date;
  type?: string;
}

/** Local time with its offset, e.g. 2026-11-24T08:00:00+08:00 (what the API takes). */
export function isoLocal(d: Date): string {
  const p = (n: number) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${off >= 0 ? '+' : '-'}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
}

function parseRecords(r: unknown): Recording[] {
  const list = Array.isArray(r) ? r : ((r as { items?: unknown[]; records?: unknown[] })?.items ?? (r as { records?: unknown[] })?.records ?? []);
  const out: Recording[] = [];
  for (const x of list as Record<string, unknown>[]) {
    const s = x.start ?? x.start_time ?? x.StartTime ?? x.begin;
    const e = x.end ?? x.end_time ?? x.EndTime;
    if (!s || !e) continue;
    const start = new Date(String(s));
    const end = new Date(String(e));
    if (!Number.isNaN(start.getTime()) && !Number.isNaN(end.getTime())) out.push({ start, end, type: (x.type ?? x.Type) as string | undefined });
  }
  return out.sort((a, b) => a.start.getTime() - b.start.getTime());
}

function dayStart(d: Date): Date {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

function dateInput(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const SPEEDS = [0.25, 0.5, 1, 2, 4];
const WINDOWS = [24, 6, 1];

interface Props {
  channelId: string;
  name: string;
  /** The playback stream now shown in the tile, if any, and the time it starts at. */
  stream?: string;
  from?: string;
  video?: HTMLVideoElement | null;
  onPlay: (stream: string, from: Date, to: Date) => void;
  onLive: () => void;
}

/** Device recordings of a day on a timeline; click to play from there; pause, seek, speed, download. */
export function PlaybackPanel({ channelId, name, stream, from, video, onPlay, onLive }: Props) {
  const t = useT();
  const [day, setDay] = useState(() => dayStart(new Date()));
  const [records, setRecords] = useState<Recording[] | null>(null);
  const [state, setState] = useState<'idle' | 'loading' | 'na' | 'refused' | 'error'>('idle');
  const [msg, setMsg] = useState('');
  const [speed, setSpeed] = useState(1);
  const [paused, setPaused] = useState(false);
  const [win, setWin] = useState(24);
  const [center, setCenter] = useState<number>(() => Date.now());
  const [now, setNow] = useState(Date.now());
  const bar = useRef<HTMLDivElement>(null);
  const enc = encodeURIComponent(channelId);
  // one stated purpose covers this panel's searches, playbacks and downloads of the channel
  const purpose = useRef<Purpose | null>(null);
  const why = (what: string) => ({ purposeFor: `${what} · ${name}`, purpose: purpose.current, onPurpose: (p: Purpose) => (purpose.current = p) });

  useEffect(() => {
    const h = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(h);
  }, []);

  async function search() {
    setState('loading');
    const end = new Date(day.getTime() + 86400000 - 1000);
    try {
      const r = await api<unknown>(`/channels/${enc}/records${qs({ start: isoLocal(day), end: isoLocal(end) })}`, why(t('playback.title')));
      setRecords(parseRecords(r));
      setState('idle');
    } catch (e) {
      setRecords(null);
      if (e instanceof ApiError && e.missing) setState('na');
      else if (e instanceof ApiError && e.refused) {
        setState('refused');
        setMsg(e.message);
      } else {
        setState('error');
        setMsg(errorText(e));
      }
    }
  }

  useEffect(() => {
    setRecords(null);
    setState('idle');
    void search();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [channelId, day.getTime()]);

  // window of the timeline
  const span = win * 3600000;
  const d0 = day.getTime();
  const lo = win === 24 ? d0 : Math.max(d0, Math.min(d0 + 86400000 - span, center - span / 2));
  const hi = lo + span;
  const pos = (ms: number) => `${(((ms - lo) / span) * 100).toFixed(3)}%`;

  const playhead = useMemo(() => {
    if (!stream || !from || !video) return null;
    return new Date(from).getTime() + video.currentTime * 1000;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stream, from, video, now]);

  async function play(at: Date) {
    const rec = records?.find((r) => r.end.getTime() > at.getTime());
    const to = rec ? rec.end : new Date(d0 + 86400000 - 1000);
    const start = rec && rec.start > at ? rec.start : at;
    if (stream && from && start.getTime() >= new Date(from).getTime()) {
      // inside the running playback: seek
      const offset = (start.getTime() - new Date(from).getTime()) / 1000;
      if (await control('seek', offset)) return;
    }
    try {
      const r = await api<{ stream: string }>(`/channels/${enc}/playback`, {
        method: 'POST',
        body: { start: isoLocal(start), end: isoLocal(to) },
        ...why(t('playback.title')),
      });
      setPaused(false);
      setSpeed(1);
      onPlay(r.stream, start, to);
    } catch (e) {
      if (e instanceof ApiError && e.missing) toast(t('playback.unavailable'), 'error');
      else toast(errorText(e), 'error');
    }
  }

  async function control(action: 'pause' | 'resume' | 'seek' | 'speed', value?: number): Promise<boolean> {
    if (!stream) return false;
    try {
      await api(`/streams/${streamPath(stream)}/control`, { method: 'POST', body: { action, value }, ...why(t('playback.title')) });
      if (video) {
        if (action === 'pause') {
          video.dataset.userPaused = '1';
          video.pause();
        }
        if (action === 'resume') {
          video.dataset.userPaused = '';
          void video.play();
        }
      }
      return true;
    } catch (e) {
      toast(e instanceof ApiError && e.missing ? t('playback.controlUnavailable') : errorText(e), 'error');
      return false;
    }
  }

  /** Download: the device sends the recording faster than real time as a stream; save all of it. */
  async function downloadRange(r: Recording) {
    const label = `${name}_${isoLocal(r.start).slice(0, 19).replace(/[-:T]/g, '')}.mp4`;
    try {
      const d = await api<{ stream: string }>(`/channels/${enc}/download`, {
        method: 'POST',
        body: { start: isoLocal(r.start), end: isoLocal(r.end) },
        ...why(t('playback.download')),
      });
      toast(t('playback.downloading', { name: label }));
      const res = await raw(`${API}/streams/${streamPath(d.stream)}/live.mp4`, { headers: { Accept: 'video/mp4' } });
      const blob = await res.blob();
      saveBlob(new Blob([blob], { type: 'video/mp4' }), label);
      toast(t('playback.downloaded', { name: label, mb: (blob.size / 1e6).toFixed(1) }), 'ok');
    } catch (e) {
      toast(e instanceof ApiError && e.missing && e.message === 'Not Found' ? t('playback.downloadUnavailable') : errorText(e), 'error', 7000);
    }
  }

  const clickBar = (e: MouseEvent<HTMLDivElement>) => {
    const rect = bar.current!.getBoundingClientRect();
    const at = lo + ((e.clientX - rect.left) / rect.width) * span;
    setCenter(at);
    void play(new Date(at));
  };

  const ticks: number[] = [];
  const step = win === 24 ? 2 * 3600000 : win === 6 ? 30 * 60000 : 5 * 60000;
  for (let x = Math.ceil(lo / step) * step; x <= hi; x += step) ticks.push(x);

  return (
    <div className="playback" data-testid="playback-panel">
      <div className="pb-head">
        <b>{t('playback.title')}</b>
        <input type="date" value={dateInput(day)} onChange={(e) => e.target.value && setDay(dayStart(new Date(`${e.target.value}T00:00:00`)))} />
        <button className="btn small" onClick={() => setDay(new Date(d0 - 86400000))}>‹</button>
        <button className="btn small" onClick={() => setDay(new Date(d0 + 86400000))}>›</button>
        <span className="seg">
          {WINDOWS.map((w) => (
            <button key={w} className={`btn small ${win === w ? 'on' : ''}`} onClick={() => setWin(w)}>
              {w}h
            </button>
          ))}
        </span>
        <span className="grow" />
        {stream && (
          <>
            <button className="btn small" onClick={async () => (await control(paused ? 'resume' : 'pause')) && setPaused(!paused)} data-testid="pb-pause">
              {paused ? `▶ ${t('playback.resume')}` : `❚❚ ${t('playback.pause')}`}
            </button>
            <select value={speed} onChange={async (e) => { const v = Number(e.target.value); if (await control('speed', v)) setSpeed(v); }} title={t('playback.speed')}>
              {SPEEDS.map((s) => (
                <option key={s} value={s}>{s}×</option>
              ))}
            </select>
          </>
        )}
        <button className="btn small" onClick={onLive}>● {t('playback.backToLive')}</button>
      </div>
      <div className="timeline" ref={bar} onClick={clickBar} title={t('playback.clickToPlay')}>
        {ticks.map((x) => (
          <div key={x} className="tick" style={{ left: pos(x) }}>
            <span>{new Date(x).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })}</span>
          </div>
        ))}
        {records?.map((r, i) =>
          r.end.getTime() < lo || r.start.getTime() > hi ? null : (
            <div key={i} className="rec" style={{ left: pos(Math.max(lo, r.start.getTime())), width: `${((Math.min(hi, r.end.getTime()) - Math.max(lo, r.start.getTime())) / span) * 100}%` }} title={`${fmtDateTime(r.start)} – ${fmtTime(r.end)}`} />
          ),
        )}
        {playhead !== null && playhead >= lo && playhead <= hi && <div className="playhead" style={{ left: pos(playhead) }} />}
        {now >= lo && now <= hi && <div className="nowline" style={{ left: pos(now) }} />}
      </div>
      <div className="pb-foot">
        {state === 'loading' && <span><span className="spinner" /> {t('playback.searching')}</span>}
        {state === 'na' && <span className="warn-text" data-testid="playback-na">{t('playback.recordsUnavailable')}</span>}
        {state === 'refused' && <span className="refused-text"><Icon name="shield" /> {msg}</span>}
        {state === 'error' && <span className="warn-text">{msg}</span>}
        {state === 'idle' && records && (
          <span className="muted">
            {t('playback.found', { n: records.length })}
            {playhead !== null && ` · ${t('playback.at')} ${fmtDateTime(playhead)}`}
          </span>
        )}
        <span className="grow" />
        {records && records.length > 0 && (
          <select
            defaultValue=""
            onChange={(e) => {
              const r = records[Number(e.target.value)];
              if (r) void downloadRange(r);
              e.target.value = '';
            }}
            title={t('playback.download')}
          >
            <option value="">{t('playback.download')}…</option>
            {records.map((r, i) => (
              <option key={i} value={i}>
                {fmtTime(r.start)} – {fmtTime(r.end)}
              </option>
            ))}
          </select>
        )}
      </div>
    </div>
  );
}
