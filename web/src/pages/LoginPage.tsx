import { useEffect, useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { localeStore, useLocale, useT } from '../i18n';
import { navigate, useLocation } from '../lib/router';
import { enroll, login, type LoginStep } from '../lib/session';

export default function LoginPage() {
  const t = useT();
  const locale = useLocale();
  const { params } = useLocation();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [step, setStep] = useState<LoginStep | null>(null);
  const [err, setErr] = useState<string | null>(params.get('expired') ? t('login.expired') : null);
  const [busy, setBusy] = useState(false);

  const done = () => {
    const next = params.get('next');
    navigate(next && next.startsWith('/app/') ? next : '/app/', true);
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      if (step?.kind === 'enroll') {
        await enroll(step.setupToken, code.trim());
        done();
        return;
      }
      const r = await login(username.trim(), password, step?.kind === 'totp' ? code.trim() : undefined);
      if (r.kind === 'ok') done();
      else {
        setStep(r);
        setCode('');
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setErr(step ? t('login.wrongCode') : t('login.wrong'));
      else if (e instanceof ApiError && e.status === 429) setErr(e.message);
      else setErr(e instanceof ApiError ? e.message : t('login.unreachable'));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="login-page">
      <div className="login-art" aria-hidden>
        <div className="grid-glow" />
      </div>
      <form className="login-card" onSubmit={submit} data-testid="login-form">
        <div className="brand big">
          <span className="logo" />
          <div>
            <div className="brand-name">{t('app.name')}</div>
            <div className="brand-sub">{t('app.tagline')}</div>
          </div>
        </div>
        {!step && (
          <>
            <label className="field">
              <span>{t('login.username')}</span>
              <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus required />
            </label>
            <label className="field">
              <span>{t('login.password')}</span>
              <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
            </label>
          </>
        )}
        {step?.kind === 'enroll' && <Enrollment uri={step.uri} secret={step.secret} />}
        {step && (
          <label className="field">
            <span>{step.kind === 'enroll' ? t('login.enrollCode') : t('login.totp')}</span>
            <input name="totp" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6,8}" value={code} onChange={(e) => setCode(e.target.value)} autoFocus required />
          </label>
        )}
        {err && <div className="error-box" role="alert" data-testid="login-error">{err}</div>}
        <button className="btn primary block" type="submit" disabled={busy} data-testid="login-submit">
          {busy ? <span className="spinner" /> : null} {step?.kind === 'enroll' ? t('login.enrollSubmit') : t('login.submit')}
        </button>
        <div className="login-foot">
          {step ? (
            <button type="button" className="link" onClick={() => { setStep(null); setErr(null); }}>{t('login.back')}</button>
          ) : (
            <span className="muted small">{t('login.notice')}</span>
          )}
          <button type="button" className="link" onClick={() => localeStore.set(locale === 'zh' ? 'en' : 'zh')}>
            {locale === 'zh' ? 'English' : '中文'}
          </button>
        </div>
      </form>
    </div>
  );
}

/** The authenticator set-up: a QR code of the otpauth:// URI, and the secret to type in. */
function Enrollment({ uri, secret }: { uri: string; secret: string }) {
  const t = useT();
  const [img, setImg] = useState<string | null>(null);
  useEffect(() => {
    let gone = false;
    import('qrcode-generator')
      .then(({ default: qrcode }) => {
        const q = qrcode(0, 'M');
        q.addData(uri);
        q.make();
        if (!gone) setImg(q.createDataURL(4, 2));
      })
      .catch(() => undefined);
    return () => {
      gone = true;
    };
  }, [uri]);
  return (
    <div className="enroll" data-testid="totp-enroll">
      <p className="small">{t('login.enrollExplain')}</p>
      {img && <img className="qr" src={img} alt="otpauth QR" />}
      <p className="small muted">
        {t('login.enrollSecret')} <code className="mono">{secret.replace(/(.{4})/g, '$1 ').trim()}</code>
      </p>
    </div>
  );
}
