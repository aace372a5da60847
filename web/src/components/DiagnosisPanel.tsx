import { useCallback, useEffect, useState } from 'react';
import { useT, fmtDateTime } from '../i18n';
import { can, useUser } from '../lib/session';
import { ErrorBox } from './Common';
import { diagnoseNow, loadDiagnoses, pictureUrl, takeReference, type ChannelDiagnoses } from '../pages/diagnosis';

/** 画面诊断 on a channel's page: the latest inspection's faults as badges, its picture (to those
 * who may watch the camera), and for duty operators "diagnose now" and "take as reference". */
export function DiagnosisPanel({ channelId }: { channelId: string }) {
  const t = useT();
  const user = useUser();
  const [d, setD] = useState<ChannelDiagnoses | null>(null);
  const [pic, setPic] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const reload = useCallback(async () => {
    try {
      setErr(null);
      const x = await loadDiagnoses(channelId);
      setD(x);
      if (x.items.length && x.items[0].picture && can(user, 'media.live')) setPic(await pictureUrl(channelId, 'snapshot'));
    } catch (e) {
      setErr(e);
    }
  }, [channelId, user]);
  useEffect(() => {
    setD(null);
    setPic(null);
    void reload();
  }, [reload]);
  useEffect(() => () => { if (pic) URL.revokeObjectURL(pic); }, [pic]);

  const act = async (f: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await f();
      await reload();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  const last = d?.items[0];
  return (
    <div className="diag-panel" data-testid="diag-panel">
      <div className="panel-title">{t('diag.title')}</div>
      <ErrorBox error={err} />
      {!d ? null : !last ? (
        <p className="muted" data-testid="diag-never">{t('diag.never')}</p>
      ) : (
        <>
          <div className="row gap wrap" data-testid="diag-faults">
            {!last.picture && <span className="badge warn">{t('diag.noPicture')}</span>}
            {last.home_preset === false && <span className="badge warn" data-testid="diag-away">{t('diag.awayFromHome')}</span>}
            {last.faults.length === 0 ? (
              <span className="badge ok" data-testid="diag-ok">{t('diag.ok')}</span>
            ) : (
              last.faults.map((f) => (
                <span key={f} className={`badge ${last.confirmed.includes(f) ? 'warn' : ''}`} data-testid={`diag-fault-${f}`}
                  title={`${(last.scores[f] ?? 0).toFixed(2)} · ${last.confirmed.includes(f) ? t('diag.confirmed') : t('diag.suspected')}`}>
                  {t(`fault.${f}`)}
                </span>
              ))
            )}
          </div>
          <small className="muted">{t('diag.at', { at: fmtDateTime(last.at) })} · {d.reference_at ? t('diag.referenceAt', { at: fmtDateTime(d.reference_at) }) : t('diag.noReference')}</small>
          {pic && <img className="diag-snapshot" src={pic} alt={t('diag.title')} data-testid="diag-snapshot" />}
        </>
      )}
      {can(user, 'tickets.manage') && (
        <div className="row gap">
          <button className="btn small" disabled={busy} onClick={() => void act(() => diagnoseNow(channelId))} data-testid="diag-now">
            {busy ? t('diag.running') : t('diag.now')}
          </button>
          <button className="btn small" disabled={busy} onClick={() => void act(() => takeReference(channelId))} data-testid="diag-reference">
            {t('diag.reference')}
          </button>
        </div>
      )}
    </div>
  );
}
