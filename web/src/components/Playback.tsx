import { useEffect, useRef, useState } from 'react';
import { api, API, ApiError, qs, raw, saveBlob, type Purpose } from '../api/client';
import { streamPath } from '../media/token';
import { fmtDateTime, fmtTime, useT } from '../i18n';
import { errorText, toast } from '../lib/toast';
import { Icon } from './Icon';
import { parseMerged, RecordingTimeline, type Merged, type TimelineItem } from './RecordingTimeline';

/** Local time with its offset, e.g. 2026-11-24T08:00:00+08:00 (what the API takes). */
export function isoLocal(d: Date): string {
  const p = (n: number) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${off >= 0 ? '+' : '-'}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
}

function dayStart(d: Date): Date {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

const DAY = 86400000;

/**
 * Where the timeline opens: the 24 hours up to the next full hour. A calendar day would open
 * nearly empty just after midnight, when the evening before is what the operator looks for.
 */
function lastDay(now: number): number {
  const d = new Date(now);
  d.setMinutes(0, 0, 0);
  return d.getTime() + 3600000 - DAY;
}

function dateInput(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The platform's recordings play from 0.5× to 16×; a device's as its MANSRTSP allows (to 4×). */
const SPEEDS = { platform: [0.5, 1, 2, 4, 8, 16], device: [0.5, 1, 2, 4] };
/** Hours the timeline shows: a day down to a quarter of an hour (minute-long segments stay clickable). */
const WINDOWS = [24, 6, 1, 0.25];
const FRAME = 1 / 25;

type Source = 'platform' | 'device';

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

/**
 * The merged timeline of a day (the platform's recordings and the device's own, gaps between);
 * a click plays from there (a seek inside the running playback); pause, frame step, speed.
 */
export function PlaybackPanel({ channelId, name, stream, from, video, onPlay, onLive }: Props) {
  const t = useT();
  // the 24 hours shown start here: the last day at first, a calendar day once one is picked
  const [d0, setD0] = useState(() => lastDay(Date.now()));
  const [merged, setMerged] = useState<Merged | null>(null);
  const [state, setState] = useState<'idle' | 'loading' | 'na' | 'refused' | 'error'>('idle');
  const [msg, setMsg] = useState('');
  const [speed, setSpeed] = useState(1);
  const [paused, setPaused] = useState(false);
  const [win, setWin] = useState(24);
  const [center, setCenter] = useState<number>(() => Date.now());
  const [now, setNow] = useState(Date.now());
  // what plays: its source, and where the recording's time was at a point of the video's time
  const playing = useRef<{ stream: string; source: Source; to: number; wall: number; vt: number } | null>(null);
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
    const end = new Date(Math.min(d0 + DAY, Date.now() + 60000));
    try {
      const r = await api<unknown>(`/channels/${enc}/recordings${qs({ start: isoLocal(new Date(d0)), end: isoLocal(end), device_wait: 5 })}`, why(t('playback.title')));
      setMerged(parseMerged(r));
      setState('idle');
    } catch (e) {
      setMerged(null);
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
    setMerged(null);
    setState('idle');
    void search();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [channelId, d0]);

  // window of the timeline
  const span = win * 3600000;
  const lo = win === 24 ? d0 : Math.max(d0, Math.min(d0 + DAY - span, center - span / 2));
  const hi = lo + span;
  // what this panel started, if it is what the tile shows (another stream: it knows nothing of it)
  const p = playing.current?.stream === stream ? playing.current : null;
  const playhead = p && video ? p.wall + Math.max(0, video.currentTime - p.vt) * 1000 : stream && from && video ? new Date(from).getTime() + video.currentTime * 1000 : null;
  const source: Source = p?.source ?? 'device';

  /** What to play for a click at ``at``: the platform's recording there or next, else the device's. */
  function pick(at: Date): { item: TimelineItem; start: Date } | null {
    const items = merged?.items ?? [];
    const ms = at.getTime();
    const inside = (s: Source) => items.find((r) => r.source === s && r.start.getTime() <= ms && r.end.getTime() > ms);
    const here = inside('platform') ?? inside('device');
    if (here) return { item: here, start: at };
    const next = items.filter((r) => r.start.getTime() > ms).sort((a, b) => a.start.getTime() - b.start.getTime() || (a.source === 'platform' ? -1 : 1))[0];
    return next ? { item: next, start: next.start } : null;
  }

  function bufferedEnd(): number {
    if (!video || !video.buffered.length) return video?.currentTime ?? 0;
    return video.buffered.end(video.buffered.length - 1);
  }

  async function play(at: Date) {
    const chosen = pick(at);
    if (!chosen) {
      toast(t('playback.nothingThere'), 'error');
      return;
    }
    const { item, start } = chosen;
    const cur = playing.current;
    if (cur && cur.stream === stream && item.source === cur.source && start.getTime() < cur.to) {
      const offset = (start.getTime() - (from ? new Date(from).getTime() : 0)) / 1000;
      if (offset >= 0 && (await control('seek', offset))) {
        // the frames of the new place follow what is buffered
        cur.wall = start.getTime();
        cur.vt = bufferedEnd();
        return;
      }
    }
    // the platform's recording plays on over its gaps to the end of the 24 hours; a device's file alone
    const to = item.source === 'platform' ? new Date(Math.min(d0 + DAY, Date.now())) : item.end;
    try {
      const r = await api<{ stream: string }>(`/channels/${enc}/playback`, {
        method: 'POST',
        body: { start: isoLocal(start), end: isoLocal(to), source: item.source },
        ...why(t('playback.title')),
      });
      setPaused(false);
      setSpeed(1);
      if (video) {
        video.playbackRate = 1;
        video.dataset.userPaused = '';
      }
      playing.current = { stream: r.stream, source: item.source, to: to.getTime(), wall: start.getTime(), vt: 0 };
      onPlay(r.stream, start, to);
    } catch (e) {
      if (e instanceof ApiError && e.missing) toast(t('playback.unavailable'), 'error');
      else toast(errorText(e), 'error');
    }
  }

  async function control(action: 'pause' | 'resume' | 'seek' | 'speed' | 'step', value?: number): Promise<boolean> {
    if (!stream) return false;
    try {
      await api(`/streams/${streamPath(stream)}/control`, { method: 'POST', body: { action, value }, ...why(t('playback.title')) });
      if (video) {
        if (action === 'pause' || action === 'step') {
          video.dataset.userPaused = '1';
          video.pause();
        }
        if (action === 'resume') {
          video.dataset.userPaused = '';
          void video.play();
        }
        // the platform sends its frames that much faster: the picture keeps up with them
        if (action === 'speed' && value && source === 'platform') video.playbackRate = value;
      }
      return true;
    } catch (e) {
      toast(e instanceof ApiError && e.missing ? t('playback.controlUnavailable') : errorText(e), 'error');
      return false;
    }
  }

  /** One frame on: the platform sends the next frame; the paused picture moves to it. */
  async function step() {
    if (!(await control('step'))) return;
    setPaused(true);
    window.setTimeout(() => {
      if (video) video.currentTime = Math.min(video.currentTime + FRAME, bufferedEnd());
    }, 250);
  }

  /** Download: the device sends the recording faster than real time as a stream; save all of it. */
  async function downloadRange(r: TimelineItem) {
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

  const deviceFiles = merged?.items.filter((r) => r.source === 'device') ?? [];
  const platformCount = merged?.items.filter((r) => r.source === 'platform').length ?? 0;

  return (
    <div className="playback" data-testid="playback-panel">
      <div className="pb-head">
        <b>{t('playback.title')}</b>
        {/* the date the 24 hours end in (today, at first) */}
        <input type="date" data-testid="pb-date" value={dateInput(new Date(d0 + DAY - 1))} onChange={(e) => e.target.value && setD0(dayStart(new Date(`${e.target.value}T00:00:00`)).getTime())} />
        <button className="btn small" onClick={() => setD0(d0 - DAY)}>‹</button>
        <button className="btn small" onClick={() => setD0(d0 + DAY)}>›</button>
        <span className="seg">
          {WINDOWS.map((w) => (
            <button key={w} className={`btn small ${win === w ? 'on' : ''}`} onClick={() => setWin(w)}>
              {w >= 1 ? `${w}h` : `${w * 60}m`}
            </button>
          ))}
        </span>
        <span className="grow" />
        {stream && (
          <>
            <button className="btn small" onClick={async () => (await control(paused ? 'resume' : 'pause')) && setPaused(!paused)} data-testid="pb-pause">
              {paused ? `▶ ${t('playback.resume')}` : `❚❚ ${t('playback.pause')}`}
            </button>
            {source === 'platform' && (
              <button className="btn small" onClick={() => void step()} title={t('playback.stepTitle')} data-testid="pb-step">
                ▮▶ {t('playback.step')}
              </button>
            )}
            <select
              value={speed}
              data-testid="pb-speed"
              onChange={async (e) => {
                const v = Number(e.target.value);
                if (await control('speed', v)) setSpeed(v);
              }}
              title={t('playback.speed')}
            >
              {SPEEDS[source].map((s) => (
                <option key={s} value={s}>{s}×</option>
              ))}
            </select>
          </>
        )}
        <button className="btn small" onClick={onLive}>● {t('playback.backToLive')}</button>
      </div>
      <RecordingTimeline
        lo={lo}
        hi={hi}
        merged={merged}
        playhead={playhead}
        now={now}
        onPick={(at) => {
          setCenter(at.getTime());
          void play(at);
        }}
      />
      <div className="pb-foot">
        <span className="legend-key platform" /> {t('playback.platform')}
        <span className="legend-key device" /> {t('playback.device')}
        <span className="legend-key gap" /> {t('playback.gap')}
        {state === 'loading' && <span><span className="spinner" /> {t('playback.searching')}</span>}
        {state === 'na' && <span className="warn-text" data-testid="playback-na">{t('playback.recordsUnavailable')}</span>}
        {state === 'refused' && <span className="refused-text"><Icon name="shield" /> {msg}</span>}
        {state === 'error' && <span className="warn-text">{msg}</span>}
        {state === 'idle' && merged && (
          <span className="muted" data-testid="pb-summary">
            {t('playback.foundMerged', { platform: platformCount, device: deviceFiles.length, gaps: merged.gaps.length })}
            {merged.device.state !== 'ok' && (
              <span className="warn-text" data-testid="pb-device-state" title={merged.device.reason}> · {t('playback.deviceUnavailable')}</span>
            )}
            {playhead !== null && ` · ${t('playback.at')} ${fmtDateTime(playhead)}`}
          </span>
        )}
        <span className="grow" />
        {deviceFiles.length > 0 && (
          <select
            defaultValue=""
            onChange={(e) => {
              const r = deviceFiles[Number(e.target.value)];
              if (r) void downloadRange(r);
              e.target.value = '';
            }}
            title={t('playback.download')}
          >
            <option value="">{t('playback.download')}…</option>
            {deviceFiles.map((r, i) => (
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
