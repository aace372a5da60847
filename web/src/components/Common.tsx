import { useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, setApprovalAsker, setPurposeAsker, type Problem, type Purpose } from '../api/client';
import { useT } from '../i18n';
import { useStore } from '../lib/store';
import { errorText, toasts } from '../lib/toast';
import { Icon } from './Icon';

export function Modal(props: { title: ReactNode; onClose: () => void; children: ReactNode; wide?: boolean; footer?: ReactNode }) {
  useEffect(() => {
    const k = (e: KeyboardEvent) => e.key === 'Escape' && props.onClose();
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, [props]);
  return (
    <div className="modal-back" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div className={`modal ${props.wide ? 'wide' : ''}`} role="dialog" aria-modal="true">
        <div className="modal-head">
          <h3>{props.title}</h3>
          <button className="icon-btn" onClick={props.onClose} aria-label="close">✕</button>
        </div>
        <div className="modal-body">{props.children}</div>
        {props.footer && <div className="modal-foot">{props.footer}</div>}
      </div>
    </div>
  );
}

/** A refusal (403): what was refused and why, never a blank page. */
export function Refusal({ detail, what }: { detail?: string; what?: string }) {
  const t = useT();
  return (
    <div className="refusal" role="alert" data-testid="refusal">
      <div className="refusal-icon"><Icon name="shield" size={36} /></div>
      <div>
        <h3>{t('refusal.title')}</h3>
        {what && <p className="refusal-what">{what}</p>}
        <p className="refusal-detail">{detail || t('refusal.default')}</p>
        <p className="muted">{t('refusal.hint')}</p>
      </div>
    </div>
  );
}

/** A feature whose API is not deployed yet. */
export function NotAvailable({ what }: { what: string }) {
  const t = useT();
  return (
    <div className="not-available" data-testid="not-available">
      <div className="na-icon"><Icon name="cycle" size={30} /></div>
      <div>
        <h3>{t('na.title', { what })}</h3>
        <p className="muted">{t('na.hint')}</p>
      </div>
    </div>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  const t = useT();
  if (!error) return null;
  if (error instanceof ApiError && error.status === 403) return <Refusal detail={error.message} />;
  return (
    <div className="error-box" role="alert">
      <b>{t('common.error')}</b> {errorText(error)}
    </div>
  );
}

export function Spinner({ label }: { label?: string }) {
  return (
    <div className="loading">
      <span className="spinner" /> {label}
    </div>
  );
}

export function Toasts() {
  const list = useStore(toasts);
  return (
    <div className="toasts" aria-live="polite">
      {list.map((x) => (
        <div key={x.id} className={`toast ${x.kind}`}>
          {x.text}
        </div>
      ))}
    </div>
  );
}

/** Hosts the dialog every sensitive action opens when the platform asks for a purpose. */
export function PurposeHost() {
  const t = useT();
  const [ask, setAsk] = useState<{ what: string; problem: Problem; resolve: (p: Purpose | null) => void } | null>(null);
  const [purpose, setPurpose] = useState(() => sessionStorage.getItem('xl.lastPurpose') ?? '');
  const [caseNo, setCaseNo] = useState(() => sessionStorage.getItem('xl.lastCase') ?? '');
  useEffect(() => {
    let queue: Promise<unknown> = Promise.resolve();
    setPurposeAsker((what, problem) => {
      // one dialog at a time, even when four tiles ask together
      const p = queue.then(() => new Promise<Purpose | null>((resolve) => setAsk({ what, problem, resolve })));
      queue = p;
      return p;
    });
    return () => setPurposeAsker(null);
  }, []);
  if (!ask) return null;
  const caseRequired = !!ask.problem.case_required;
  const done = (p: Purpose | null) => {
    if (p) {
      sessionStorage.setItem('xl.lastPurpose', p.purpose);
      sessionStorage.setItem('xl.lastCase', p.caseNo);
    }
    ask.resolve(p);
    setAsk(null);
  };
  return (
    <Modal
      title={t('purpose.title')}
      onClose={() => done(null)}
      footer={
        <>
          <button className="btn" onClick={() => done(null)}>{t('common.cancel')}</button>
          <button
            className="btn primary"
            disabled={purpose.trim().length < 2 || (caseRequired && !caseNo.trim())}
            onClick={() => done({ purpose: purpose.trim(), caseNo: caseNo.trim() })}
            data-testid="purpose-submit"
          >
            {t('purpose.submit')}
          </button>
        </>
      }
    >
      <p className="muted">{t('purpose.explain')}</p>
      <p className="purpose-what">{ask.what}</p>
      {ask.problem.detail && <p className="muted small">{ask.problem.detail}</p>}
      <label className="field">
        <span>{t('purpose.purpose')}</span>
        <textarea value={purpose} onChange={(e) => setPurpose(e.target.value)} rows={3} placeholder={t('purpose.placeholder')} autoFocus data-testid="purpose-text" />
      </label>
      <label className="field">
        <span>
          {t('purpose.case')}
          {caseRequired && <b className="req">*</b>}
        </span>
        <input value={caseNo} onChange={(e) => setCaseNo(e.target.value)} placeholder={t('purpose.casePlaceholder')} data-testid="purpose-case" />
      </label>
    </Modal>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function StatusDot({ status }: { status?: string | null }) {
  const s = (status ?? 'UNKNOWN').toUpperCase();
  return <span className={`dot st-${s === 'ON' ? 'on' : s === 'OFF' || s === 'VLOST' || s === 'DEFECT' ? 'off' : 'unknown'}`} title={s} />;
}

/** Hosts the dialog that requests an approval when a rule needs a second person's consent. */
export function ApprovalHost() {
  const t = useT();
  const [ask, setAsk] = useState<{ what: string; problem: Problem; done: () => void } | null>(null);
  const [purpose, setPurpose] = useState('');
  const [caseNo, setCaseNo] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [sent, setSent] = useState(false);
  useEffect(() => {
    setApprovalAsker(
      (what, problem) =>
        new Promise<void>((done) => {
          setErr(null);
          setSent(false);
          setAsk({ what, problem, done });
        }),
    );
    return () => setApprovalAsker(null);
  }, []);
  if (!ask) return null;
  const close = () => {
    ask.done();
    setAsk(null);
  };
  async function request() {
    setErr(null);
    try {
      await api('/approvals', {
        method: 'POST',
        body: { actions: [ask!.problem.action], channel_ids: [ask!.problem.channel_id], purpose: purpose.trim(), case: caseNo.trim() || undefined },
      });
      setSent(true);
    } catch (e) {
      setErr(e);
    }
  }
  return (
    <Modal
      title={t('approval.title')}
      onClose={close}
      footer={
        sent ? (
          <button className="btn primary" onClick={close}>{t('common.close')}</button>
        ) : (
          <>
            <button className="btn" onClick={close}>{t('common.cancel')}</button>
            <button className="btn primary" disabled={purpose.trim().length < 2} onClick={request}>{t('approval.request')}</button>
          </>
        )
      }
    >
      <p className="purpose-what">{ask.what}</p>
      <p className="muted small">{ask.problem.detail}</p>
      {sent ? (
        <p>{t('approval.sent')}</p>
      ) : (
        <>
          <label className="field">
            <span>{t('purpose.purpose')}</span>
            <textarea value={purpose} onChange={(e) => setPurpose(e.target.value)} rows={3} autoFocus />
          </label>
          <label className="field">
            <span>{t('purpose.case')}</span>
            <input value={caseNo} onChange={(e) => setCaseNo(e.target.value)} />
          </label>
        </>
      )}
      <ErrorBox error={err} />
    </Modal>
  );
}
