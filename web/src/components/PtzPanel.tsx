import { useEffect, useRef, useState } from 'react';
import { api, ApiError, type Purpose } from '../api/client';
import { useT } from '../i18n';
import { errorText } from '../lib/toast';

interface PtzBody {
  action: string;
  pan?: number;
  tilt?: number;
  zoom?: number;
  speed?: number;
  preset?: number;
}

const DIRS: [string, number, number][] = [
  ['↖', -1, 1],
  ['↑', 0, 1],
  ['↗', 1, 1],
  ['←', -1, 0],
  ['', 0, 0],
  ['→', 1, 0],
  ['↙', -1, -1],
  ['↓', 0, -1],
  ['↘', 1, -1],
];

/** Pan/tilt/zoom and presets: hold a direction to move, release to stop. */
export function PtzPanel({ channelId, name, ptzType }: { channelId: string; name?: string; ptzType?: number | null }) {
  const t = useT();
  const [speed, setSpeed] = useState(128);
  const [preset, setPreset] = useState(1);
  const [answer, setAnswer] = useState<{ kind: 'ok' | 'error' | 'na' | 'refused'; text: string } | null>(null);
  const moving = useRef(false);
  // Commands go one after another; a purpose stated once covers this control session.
  const chain = useRef<Promise<unknown>>(Promise.resolve());
  const purpose = useRef<Purpose | null>(null);
  const lastOk = useRef(false);
  useEffect(() => {
    purpose.current = null;
  }, [channelId]);

  async function send1(body: PtzBody): Promise<boolean> {
    try {
      const r = await api<{ ok?: boolean; device_answer?: unknown; ptz_cmd?: string; result?: unknown; sip_status?: number }>(`/channels/${encodeURIComponent(channelId)}/ptz`, {
        method: 'POST',
        body,
        purposeFor: `${t('ptz.title')} · ${name ?? channelId}`,
        purpose: purpose.current,
        onPurpose: (p) => (purpose.current = p),
      });
      const a = r?.device_answer ?? r?.result ?? r?.ptz_cmd;
      const sip = r?.sip_status ? ` · ${t('ptz.deviceAnswered', { status: r.sip_status })}` : '';
      setAnswer({ kind: r?.ok === false ? 'error' : 'ok', text: `${body.action} → ${r?.ok === false ? t('ptz.failed') : t('ptz.sent')}${sip}${a ? ` · ${typeof a === 'string' ? a : JSON.stringify(a)}` : ''}` });
      return r?.ok !== false;
    } catch (e) {
      if (e instanceof ApiError && e.missing && e.message === 'Not Found') setAnswer({ kind: 'na', text: t('ptz.unavailable') });
      else if (e instanceof ApiError && e.refused) setAnswer({ kind: 'refused', text: `${t('refusal.title')}: ${e.message}` });
      else setAnswer({ kind: 'error', text: errorText(e) });
      return false;
    }
  }

  function send(body: PtzBody, onlyAfterMove = false): void {
    chain.current = chain.current.then(async () => {
      if (onlyAfterMove && !lastOk.current) return; // the move never started: nothing to stop
      const ok = await send1(body);
      if (body.action === 'move' || body.action === 'zoom') lastOk.current = ok;
      if (body.action === 'stop') lastOk.current = false;
    });
  }

  const start = (pan: number, tilt: number) => {
    moving.current = true;
    send({ action: 'move', pan, tilt, speed });
  };
  const stop = () => {
    if (!moving.current) return;
    moving.current = false;
    send({ action: 'stop' }, true);
  };
  const zoom = (z: number) => {
    moving.current = true;
    send({ action: 'zoom', zoom: z, speed });
  };

  return (
    <div className="ptz" data-testid="ptz-panel">
      <div className="panel-title">{t('ptz.title')}</div>
      {ptzType !== undefined && ptzType !== null && ptzType !== 1 && <div className="muted small">{t('ptz.maybeFixed')}</div>}
      <div className="ptz-pad">
        {DIRS.map(([label, pan, tilt], i) =>
          label ? (
            <button
              key={i}
              className="ptz-btn"
              onPointerDown={() => start(pan, tilt)}
              onPointerUp={stop}
              onPointerLeave={stop}
              aria-label={`ptz ${pan},${tilt}`}
              data-testid={`ptz-${pan}-${tilt}`}
            >
              {label}
            </button>
          ) : (
            <button key={i} className="ptz-btn stop" onClick={() => send({ action: 'stop' })} title={t('ptz.stop')}>
              ■
            </button>
          ),
        )}
      </div>
      <div className="ptz-zoom">
        <button className="btn" onPointerDown={() => zoom(1)} onPointerUp={stop} onPointerLeave={stop} data-testid="ptz-zoom-in">
          ＋ {t('ptz.zoomIn')}
        </button>
        <button className="btn" onPointerDown={() => zoom(-1)} onPointerUp={stop} onPointerLeave={stop} data-testid="ptz-zoom-out">
          － {t('ptz.zoomOut')}
        </button>
      </div>
      <label className="field inline">
        <span>{t('ptz.speed')}</span>
        <input type="range" min={1} max={255} value={speed} onChange={(e) => setSpeed(Number(e.target.value))} />
        <span className="num">{speed}</span>
      </label>
      <div className="ptz-presets">
        <span>{t('ptz.preset')}</span>
        <input type="number" min={1} max={255} value={preset} onChange={(e) => setPreset(Math.max(1, Math.min(255, Number(e.target.value) || 1)))} />
        <button className="btn small" onClick={() => send({ action: 'preset_call', preset })}>{t('ptz.call')}</button>
        <button className="btn small" onClick={() => send({ action: 'preset_set', preset })}>{t('ptz.set')}</button>
      </div>
      {answer && (
        <div className={`ptz-answer ${answer.kind}`} data-testid="ptz-answer">
          {answer.text}
        </div>
      )}
    </div>
  );
}
