import { useEffect, useRef, useState } from 'react';
import { ApiError, API } from '../api/client';
import { useT } from '../i18n';
import { mediaToken, streamPath } from '../media/token';
import { playStream, type PlayerState, type StreamHandle, type StreamStats } from '../media/mse';
import { Icon } from './Icon';

export type PlayerSource =
  | { kind: 'live'; channelId: string }
  | { kind: 'stream'; name: string; channelId?: string };

interface Props {
  source: PlayerSource | null;
  title?: string;
  /** Called with the handle once playing starts (snapshots, local recording). */
  onHandle?: (h: StreamHandle | null) => void;
  onState?: (s: PlayerState) => void;
  showStats?: boolean;
  className?: string;
}

const enc = encodeURIComponent;

export function Player({ source, title, onHandle, onState, showStats = true, className }: Props) {
  const t = useT();
  const videoRef = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<PlayerState | 'idle'>('idle');
  const [detail, setDetail] = useState('');
  const [stats, setStats] = useState<StreamStats | null>(null);
  const [attempt, setAttempt] = useState(0);
  const key = source ? (source.kind === 'live' ? `live:${source.channelId}` : `stream:${source.name}`) : '';

  useEffect(() => {
    const video = videoRef.current;
    if (!video || !source) {
      setState('idle');
      return;
    }
    let handle: StreamHandle | null = null;
    let cancelled = false;
    setState('connecting');
    setDetail('');
    setStats(null);
    const report = (s: PlayerState, d?: string) => {
      if (cancelled) return;
      setState(s);
      setDetail(d ?? '');
      onState?.(s);
    };
    (async () => {
      const prefix = source.kind === 'live' ? `/channels/${enc(source.channelId)}` : `/streams/${streamPath(source.name)}`;
      const purposeFor = title ? `${t(source.kind === 'live' ? 'player.purposeLive' : 'playback.title')} · ${title}` : undefined;
      let token: string | null = null;
      try {
        token = await mediaToken(prefix, purposeFor);
      } catch (e) {
        if (e instanceof ApiError && e.refused) return report('refused', e.message);
        if (e instanceof ApiError && e.status === 404) return report('unavailable', e.message);
        /* otherwise try the stream itself, which says what is wrong */
      }
      if (cancelled) return;
      handle = playStream(
        video,
        { ws: `${API}${prefix}/live.ws`, http: `${API}${prefix}/live.mp4`, live: source.kind === 'live', token, purposeFor },
        report,
        showStats ? (s) => !cancelled && setStats(s) : undefined,
      );
      onHandle?.(handle);
    })();
    return () => {
      cancelled = true;
      handle?.close();
      onHandle?.(null);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, attempt]);

  const overlay = (() => {
    switch (state) {
      case 'idle':
        return null;
      case 'connecting':
        return <div className="pl-msg"><span className="spinner" /> {t('player.connecting')}</div>;
      case 'reconnecting':
        return <div className="pl-msg"><span className="spinner" /> {t('player.reconnecting')}</div>;
      case 'stalled':
        return <div className="pl-msg subtle"><span className="spinner" /> {t('player.buffering')}</div>;
      case 'unavailable':
        return (
          <div className="pl-msg warn" data-testid="player-unavailable">
            <b>{t('player.unavailable')}</b>
            <small>{detail && detail !== 'Not Found' ? detail : t('player.unavailableHint')}</small>
            <button className="btn small" onClick={() => setAttempt((a) => a + 1)}>{t('common.retry')}</button>
          </div>
        );
      case 'refused':
        return (
          <div className="pl-msg refused" data-testid="player-refused">
            <b><Icon name="shield" /> {t('refusal.title')}</b>
            <small>{detail}</small>
          </div>
        );
      case 'unsupported':
        return (
          <div className="pl-msg warn">
            <b>{t('player.unsupported')}</b>
            <small>{detail}</small>
          </div>
        );
      case 'ended':
        return (
          <div className="pl-msg subtle">
            {t('player.ended')}
            <button className="btn small" onClick={() => setAttempt((a) => a + 1)}>{t('common.retry')}</button>
          </div>
        );
      case 'error':
        return (
          <div className="pl-msg warn">
            <b>{t('player.error')}</b>
            <small>{detail}</small>
            <button className="btn small" onClick={() => setAttempt((a) => a + 1)}>{t('common.retry')}</button>
          </div>
        );
      default:
        return null;
    }
  })();

  return (
    <div className={`player ${className ?? ''}`} data-state={state}>
      <video ref={videoRef} muted playsInline data-testid="video" />
      {overlay}
      {showStats && stats && state === 'playing' && (
        <div className="pl-stats">
          {stats.width ? `${stats.width}×${stats.height}` : ''} · {(stats.bitrate / 1e6).toFixed(2)} Mb/s · {stats.latency.toFixed(1)} s ·{' '}
          {stats.transport.toUpperCase()}
        </div>
      )}
    </div>
  );
}
