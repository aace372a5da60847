import { useEffect, useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Channel, Device, Unit } from '../api/types';
import { useT, fmtDateTime } from '../i18n';
import { navigate } from '../lib/router';
import { can, useUser } from '../lib/session';
import { openOnWall } from '../lib/wall';
import { ErrorBox, Refusal, StatusDot } from './Common';
import { Player } from './Player';
import { PtzPanel } from './PtzPanel';
import { Icon } from './Icon';
import { DiagnosisPanel } from './DiagnosisPanel';
import { RecordingPlan } from './RecordingPlan';

/** One channel: live view, registry facts, device state, PTZ; a refusal when out of scope. */
export function ChannelDetail({ id }: { id: string }) {
  const t = useT();
  const user = useUser();
  const [c, setC] = useState<Channel | null>(null);
  const [dev, setDev] = useState<Device | null>(null);
  const [unit, setUnit] = useState<Unit | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    setC(null);
    setDev(null);
    setUnit(null);
    setErr(null);
    api<Channel>(`/channels/${encodeURIComponent(id)}`)
      .then((ch) => {
        setC(ch);
        if (ch.device_id) api<Device>(`/devices/${encodeURIComponent(ch.device_id)}`).then(setDev).catch(() => undefined);
        if (ch.unit_id) api<Unit>(`/units/${ch.unit_id}`).then(setUnit).catch(() => undefined);
      })
      .catch(setErr);
  }, [id]);

  if (err) {
    if (err instanceof ApiError && err.refused) return <Refusal detail={err.message} what={t('ch.refusedWhat', { id })} />;
    if (err instanceof ApiError && err.status === 404) return <div className="error-box">{t('ch.notFound', { id })}</div>;
    return <ErrorBox error={err} />;
  }
  if (!c) return <div className="loading"><span className="spinner" /></div>;
  return (
    <div className="channel-detail" data-testid="channel-detail">
      <div className="cd-head">
        <h2><StatusDot status={c.status} /> {c.name}</h2>
        <span className="mono muted">{c.id}</span>
        <span className="grow" />
        <button className="btn small primary" onClick={() => { openOnWall({ id: c.id, name: c.name, status: c.status, ptz_type: c.ptz_type }); navigate('/app/wall'); }}><Icon name="wall" /> {t('map.toWall')}</button>
        {c.longitude !== null && <button className="btn small" onClick={() => navigate(`/app/map?focus=${c.id}`)}>{t('wall.onMap')}</button>}
      </div>
      <div className="cd-body">
        <div className="cd-video">
          {can(user, 'media.live') ? <Player source={{ kind: 'live', channelId: c.id }} title={c.name} /> : <div className="muted">{t('player.noRight')}</div>}
        </div>
        <div className="cd-side">
          <dl className="kv">
            <dt>{t('ch.status')}</dt><dd>{c.status}{c.networked ? ` · ${t('ch.networked')}` : ''}</dd>
            <dt>{t('ch.class')}</dt><dd>{c.point_class ? t(`class.${c.point_class}`) : '—'}{c.key_site ? ` · ${t('ch.keySite')}` : ''}</dd>
            <dt>{t('ch.tier')}</dt><dd>{c.tier ? t(`tier.${c.tier}`) : '—'}</dd>
            <dt>{t('ch.coverage')}</dt><dd>{c.coverage ? t(`coverage.${c.coverage}`) : '—'}</dd>
            <dt>{t('ch.department')}</dt><dd>{c.department ?? '—'}</dd>
            <dt>{t('unit.name')}</dt><dd>{unit?.name ?? c.unit_id ?? '—'}</dd>
            <dt>{t('unit.division')}</dt><dd className="mono">{c.division_code}</dd>
            <dt>{t('ch.address')}</dt><dd>{c.address ?? '—'}</dd>
            <dt>{t('ch.coords')}</dt><dd>{c.longitude !== null && c.latitude !== null ? `${c.longitude}, ${c.latitude}` : t('ch.unlabelled')}</dd>
            <dt>{t('ch.retention')}</dt><dd>{c.retention_days_required ?? '—'} {t('common.days')}</dd>
            <dt>{t('ch.model')}</dt><dd>{[c.manufacturer, c.model].filter(Boolean).join(' ') || '—'}</dd>
            <dt>{t('ch.device')}</dt>
            <dd>
              {dev ? (
                <>
                  <span className={`dot ${dev.online ? 'st-on' : 'st-off'}`} /> {dev.name || dev.id}
                  <small className="muted"> · {t('device.keepalive')} {fmtDateTime(dev.last_keepalive)}</small>
                </>
              ) : (
                c.device_id ?? '—'
              )}
            </dd>
          </dl>
          {can(user, 'device.ptz') && <PtzPanel channelId={c.id} name={c.name} ptzType={c.ptz_type} />}
          {can(user, 'health.read') && <DiagnosisPanel channelId={c.id} />}
          <RecordingPlan channelId={c.id} />
        </div>
      </div>
    </div>
  );
}
