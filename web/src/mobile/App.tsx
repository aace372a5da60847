// The phone app (/m/): grid members (网格员) and residents (居民). One page, a few screens.
import { useCallback, useEffect, useState, type ChangeEvent, type FormEvent } from 'react';
import { ApiError, api, getToken, setSession, storedUser } from '../api/client';
import { Player } from '../components/Player';
import { fmtDateTime, localeStore, useLocale, useT } from '../i18n';
import { flush, send, waiting, type Report } from './queue';

interface User {
  id: number;
  username: string;
  role: string;
  department: string | null;
  division_code: string | null;
  display_name?: string;
}

interface Camera {
  id: string;
  name: string;
  status: string;
  address: string | null;
}

interface Mine {
  id: number;
  category: string;
  status: string;
  description: string;
  created_at: string;
}

interface Dispatch {
  id: number;
  department: string;
  status: string;
  deadline: string;
}

interface Case {
  id: number;
  category: string;
  status: string;
  description: string;
  address: string | null;
  created_at: string;
  dispatches?: Dispatch[];
}

type Pos = { longitude: number; latitude: number; accuracy: number } | null | 'none';

function message(e: unknown): string {
  return e instanceof ApiError ? e.message : String(e);
}

/** The phone's position, watched while the screen is open (null: not yet; 'none': refused). */
function usePosition(): Pos {
  const [pos, setPos] = useState<Pos>(null);
  useEffect(() => {
    if (!('geolocation' in navigator)) {
      setPos('none');
      return;
    }
    const id = navigator.geolocation.watchPosition(
      (p) => setPos({ longitude: p.coords.longitude, latitude: p.coords.latitude, accuracy: p.coords.accuracy }),
      () => setPos((old) => (old && old !== 'none' ? old : 'none')),
      { enableHighAccuracy: true, maximumAge: 30000, timeout: 20000 },
    );
    return () => navigator.geolocation.clearWatch(id);
  }, []);
  return pos;
}

export function MobileApp() {
  const [user, setUser] = useState<User | null>(() => (getToken() ? storedUser<User>() : null));
  const [note, setNote] = useState('');
  const t = useT();
  const locale = useLocale();

  useEffect(() => {
    const out = () => {
      setSession(null);
      setUser(null);
    };
    window.addEventListener('xl:unauthorized', out);
    return () => window.removeEventListener('xl:unauthorized', out);
  }, []);

  const logout = () => {
    api('/auth/logout', { method: 'POST' }).catch(() => undefined);
    setSession(null);
    setUser(null);
  };

  return (
    <div className="m-app">
      <header className="m-head">
        <b>{t('m.title')}</b>
        <span className="grow" />
        <button className="btn small" onClick={() => localeStore.set(locale === 'zh' ? 'en' : 'zh')}>{t('m.lang')}</button>
        {user && <button className="btn small" onClick={logout} data-testid="m-logout">{t('m.logout')}</button>}
      </header>
      {note && <div className="m-note" data-testid="m-note" onClick={() => setNote('')}>{note}</div>}
      {!user ? (
        <Entry onIn={(u, msg) => { setUser(u); setNote(msg ?? ''); }} />
      ) : user.role === 'resident' ? (
        <Resident me={user.username} say={setNote} />
      ) : (
        <Grid me={user.username} say={setNote} />
      )}
    </div>
  );
}

function Entry({ onIn }: { onIn: (u: User, note?: string) => void }) {
  const t = useT();
  const [mode, setMode] = useState<'login' | 'join'>(() => (location.hash.startsWith('#join') ? 'join' : 'login'));
  const [f, setF] = useState({ username: '', password: '', code: location.hash.split('=')[1] ?? '', name: '', phone: '' });
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: ChangeEvent<HTMLInputElement>) => setF({ ...f, [k]: e.target.value });

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErr('');
    setBusy(true);
    try {
      if (mode === 'login') {
        const r = await api<{ access_token?: string; user: User }>('/auth/login', {
          method: 'POST', anonymous: true, body: { username: f.username, password: f.password },
        });
        if (!r.access_token) throw new Error('second factor required: use the console');
        setSession(r.access_token, r.user);
        onIn(r.user);
      } else {
        const r = await api<{ access_token: string; user: User; place: string }>('/residents/join', {
          method: 'POST', anonymous: true, body: { code: f.code, name: f.name, phone: f.phone, password: f.password },
        });
        setSession(r.access_token, r.user);
        onIn(r.user, t('m.joined', { place: r.place, username: r.user.username }));
      }
    } catch (e2) {
      // a code refused says why it may be (the platform answers every such refusal alike)
      setErr(mode === 'join' && e2 instanceof ApiError && e2.status === 403 ? t('m.codeRefused') : message(e2));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="m-card m-entry" onSubmit={submit}>
      <div className="seg m-seg">
        <button type="button" className={`btn ${mode === 'login' ? 'on' : ''}`} onClick={() => setMode('login')} data-testid="m-mode-login">{t('m.login')}</button>
        <button type="button" className={`btn ${mode === 'join' ? 'on' : ''}`} onClick={() => setMode('join')} data-testid="m-mode-join">{t('m.join')}</button>
      </div>
      {mode === 'login' ? (
        <label className="m-field"><span>{t('login.username')}</span>
          <input value={f.username} onChange={set('username')} autoComplete="username" data-testid="m-username" /></label>
      ) : (
        <>
          <p className="muted small">{t('m.joinHint')}</p>
          <label className="m-field"><span>{t('m.code')}</span>
            <input value={f.code} onChange={set('code')} autoCapitalize="characters" placeholder="XXXX-XXXX-XXXX-XXXX" data-testid="m-code" /></label>
          <label className="m-field"><span>{t('m.name')}</span>
            <input value={f.name} onChange={set('name')} data-testid="m-name" /></label>
          <label className="m-field"><span>{t('m.phone')}</span>
            <input value={f.phone} onChange={set('phone')} inputMode="tel" data-testid="m-phone" /></label>
        </>
      )}
      <label className="m-field"><span>{mode === 'login' ? t('login.password') : t('m.password')}</span>
        <input type="password" value={f.password} onChange={set('password')}
          autoComplete={mode === 'login' ? 'current-password' : 'new-password'} data-testid="m-password" /></label>
      {err && <div className="m-error" data-testid="m-error">{err}</div>}
      <button className="btn primary m-big" disabled={busy} data-testid="m-submit">{mode === 'login' ? t('m.login') : t('m.join')}</button>
    </form>
  );
}

function Tabs<K extends string>({ tabs, on, set }: { tabs: [K, string][]; on: K; set: (k: K) => void }) {
  return (
    <nav className="m-tabs">
      {tabs.map(([k, label]) => (
        <button key={k} className={on === k ? 'on' : ''} onClick={() => set(k)} data-testid={`m-tab-${k}`}>{label}</button>
      ))}
    </nav>
  );
}

/** Seconds between tries at sending what is kept while the phone says it is online (the
 *  platform was unreachable, busy or rate-limiting when the 'online' event came). */
const RETRY_S = 30;

/** Sends the reports `me` kept offline: when the phone is back online, at start, and again
 *  every RETRY_S seconds while some wait. */
function useQueue(me: string, say: (s: string) => void): [number, () => void] {
  const t = useT();
  const [n, setN] = useState(0);
  const refresh = useCallback(() => void waiting(me).then(setN), [me]);
  useEffect(() => {
    const go = () => {
      flush(me).then(({ sent, refused }) => {
        const said = [sent ? t('m.flushed', { n: sent }) : '', ...refused.map((r) => t('m.refused', { category: r.category, reason: r.reason }))];
        if (sent || refused.length) say(said.filter(Boolean).join(' · '));
        refresh();
      }).catch(() => refresh());
    };
    go();
    window.addEventListener('online', go);
    const timer = window.setInterval(() => {
      if (navigator.onLine) void waiting(me).then((k) => k > 0 && go());
    }, RETRY_S * 1000);
    return () => {
      window.removeEventListener('online', go);
      window.clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [me]);
  return [n, refresh];
}

function Resident({ me, say }: { me: string; say: (s: string) => void }) {
  const t = useT();
  const [tab, setTab] = useState<'cameras' | 'report' | 'mine'>('cameras');
  const [queued, refresh] = useQueue(me, say);
  return (
    <>
      <main className="m-main">
        {queued > 0 && <div className="m-note subtle">{t('m.queuedCount', { n: queued })}</div>}
        {tab === 'cameras' && <Cameras />}
        {tab === 'report' && <ReportForm me={me} oneTap say={say} onQueued={refresh} />}
        {tab === 'mine' && <MyReports />}
      </main>
      <Tabs tabs={[['cameras', t('m.tab.cameras')], ['report', t('m.tab.report')], ['mine', t('m.tab.mine')]]} on={tab} set={setTab} />
    </>
  );
}

function Grid({ me, say }: { me: string; say: (s: string) => void }) {
  const t = useT();
  const [tab, setTab] = useState<'cases' | 'report' | 'mine'>('cases');
  const [queued, refresh] = useQueue(me, say);
  const pos = usePosition();
  // The grid member's own position, for dispatch (at most once a minute).
  const [sentAt, setSentAt] = useState(0);
  useEffect(() => {
    if (!pos || pos === 'none' || Date.now() - sentAt < 60000) return;
    setSentAt(Date.now());
    api('/mobile/position', { method: 'PUT', body: { longitude: pos.longitude, latitude: pos.latitude, accuracy: pos.accuracy } })
      .catch(() => undefined);
  }, [pos, sentAt]);
  return (
    <>
      <main className="m-main">
        {queued > 0 && <div className="m-note subtle">{t('m.queuedCount', { n: queued })}</div>}
        {tab === 'cases' && <Cases say={say} />}
        {tab === 'report' && <ReportForm me={me} say={say} onQueued={refresh} />}
        {tab === 'mine' && <MyReports />}
      </main>
      <Tabs tabs={[['cases', t('m.tab.cases')], ['report', t('m.tab.report')], ['mine', t('m.tab.mine')]]} on={tab} set={setTab} />
    </>
  );
}

function Cameras() {
  const t = useT();
  const [items, setItems] = useState<Camera[] | null>(null);
  const [err, setErr] = useState('');
  const [open, setOpen] = useState<Camera | null>(null);
  useEffect(() => {
    api<{ items: Camera[] }>('/residents/cameras').then((r) => setItems(r.items)).catch((e) => setErr(message(e)));
  }, []);
  if (open) {
    return (
      <div className="m-card">
        <button className="btn small" onClick={() => setOpen(null)} data-testid="m-back">‹ {t('m.back')}</button>
        <h3>{open.name}</h3>
        <Player source={{ kind: 'live', channelId: open.id }} title={open.name} showStats={false} className="m-player" />
        {open.address && <p className="muted small">{open.address}</p>}
      </div>
    );
  }
  if (err) return <div className="m-error">{err}</div>;
  if (!items) return <div className="muted">…</div>;
  if (!items.length) return <div className="muted">{t('m.noCameras')}</div>;
  return (
    <ul className="m-list" data-testid="m-cameras">
      {items.map((c) => (
        <li key={c.id} onClick={() => setOpen(c)} data-testid="m-camera" data-id={c.id}>
          <span className={`dot ${c.status === 'ON' ? 'st-on' : 'st-off'}`} /> <b>{c.name}</b>
          {c.address && <small className="muted"> · {c.address}</small>}
        </li>
      ))}
    </ul>
  );
}

function ReportForm({ me, oneTap = false, say, onQueued }: { me: string; oneTap?: boolean; say: (s: string) => void; onQueued: () => void }) {
  const t = useT();
  const pos = usePosition();
  const [cats, setCats] = useState<string[]>([]);
  const [category, setCategory] = useState('');
  const [description, setDescription] = useState('');
  const [photo, setPhoto] = useState<File | null>(null);
  const [anonymous, setAnonymous] = useState(false);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api<{ categories: string[] }>('/mobile/reports?limit=1').then((r) => {
      setCats(r.categories);
      localStorage.setItem('xl.m.categories', JSON.stringify(r.categories));
    }).catch(() => setCats(JSON.parse(localStorage.getItem('xl.m.categories') ?? '[]') as string[]));
  }, []);

  async function go(cat: string) {
    setErr('');
    if (!cat) return;
    if (!pos || pos === 'none') {
      setErr(t('m.noPosition'));
      return;
    }
    setBusy(true);
    const r: Report = { category: cat, description, longitude: pos.longitude, latitude: pos.latitude, anonymous, photo };
    try {
      const out = await send(r, me);
      if (out === 'queued') {
        say(t('m.queued'));
        onQueued();
      } else say(t('m.sent', { id: out.id }));
      setDescription('');
      setPhoto(null);
    } catch (e) {
      const wait = e instanceof ApiError && e.status === 429 ? Number(e.problem.retry_after) : NaN;
      setErr(Number.isFinite(wait) ? t('m.tooMany', { min: Math.ceil(wait / 60) }) : message(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="m-card" data-testid="m-report">
      <div className="m-field">
        <span>{t('m.position')}</span>
        <span className="mono small" data-testid="m-position">
          {pos === null ? t('m.locating') : pos === 'none' ? t('m.noPosition') : `${pos.longitude.toFixed(5)}, ${pos.latitude.toFixed(5)} (±${Math.round(pos.accuracy)} m)`}
        </span>
      </div>
      <label className="m-field m-photo">
        <span>📷 {photo ? t('m.photoChosen') : t('m.photo')}</span>
        <input type="file" accept="image/jpeg,image/png" capture="environment" data-testid="m-photo"
          onChange={(e) => setPhoto(e.target.files?.[0] ?? null)} />
      </label>
      <label className="m-field"><span>{t('m.description')}</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={2} maxLength={1000} data-testid="m-description" /></label>
      {oneTap ? (
        <>
          <label className="m-check"><input type="checkbox" checked={anonymous} onChange={(e) => setAnonymous(e.target.checked)} /> {t('m.anonymous')}</label>
          <p className="muted small">{t('m.oneTap')}</p>
          <div className="m-cats">
            {cats.map((c) => (
              <button key={c} className="btn m-cat" disabled={busy} onClick={() => void go(c)} data-testid="m-category" data-category={c}>{c}</button>
            ))}
          </div>
        </>
      ) : (
        <>
          <label className="m-field"><span>{t('m.category')}</span>
            <select value={category} onChange={(e) => setCategory(e.target.value)} data-testid="m-category-select">
              <option value="">—</option>
              {cats.map((c) => <option key={c} value={c}>{c}</option>)}
            </select></label>
          <button className="btn primary m-big" disabled={busy || !category} onClick={() => void go(category)} data-testid="m-send">{t('m.submit')}</button>
        </>
      )}
      {err && <div className="m-error" data-testid="m-error">{err}</div>}
    </div>
  );
}

function MyReports() {
  const t = useT();
  const [items, setItems] = useState<Mine[] | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    api<{ items: Mine[] }>('/mobile/reports').then((r) => setItems(r.items)).catch((e) => setErr(message(e)));
  }, []);
  if (err) return <div className="m-error">{err}</div>;
  if (!items) return <div className="muted">…</div>;
  if (!items.length) return <div className="muted">{t('m.noReports')}</div>;
  return (
    <ul className="m-list" data-testid="m-mine">
      {items.map((r) => (
        <li key={r.id} data-testid="m-mine-item" data-id={r.id}>
          <b>#{r.id} {r.category}</b> <span className={`tag ${r.status}`}>{t(`m.status.${r.status}`)}</span>
          <div className="small muted">{fmtDateTime(r.created_at)} · {r.description}</div>
        </li>
      ))}
    </ul>
  );
}

function Cases({ say }: { say: (s: string) => void }) {
  const t = useT();
  const [items, setItems] = useState<Case[] | null>(null);
  const [err, setErr] = useState('');
  const [open, setOpen] = useState<number | null>(null);
  const load = useCallback(() => {
    api<{ items: Case[] }>('/incidents?status=dispatched,handling,fed_back').then((r) => setItems(r.items)).catch((e) => setErr(message(e)));
  }, []);
  useEffect(load, [load]);
  if (open !== null) return <CaseDetail id={open} say={say} onBack={() => { setOpen(null); load(); }} />;
  if (err) return <div className="m-error">{err}</div>;
  if (!items) return <div className="muted">…</div>;
  if (!items.length) return <div className="muted">{t('m.noCases')}</div>;
  return (
    <ul className="m-list" data-testid="m-cases">
      {items.map((c) => (
        <li key={c.id} onClick={() => setOpen(c.id)} data-testid="m-case" data-id={c.id}>
          <b>#{c.id} {c.category}</b> <span className={`tag ${c.status}`}>{t(`m.status.${c.status}`)}</span>
          <div className="small muted">{fmtDateTime(c.created_at)} · {c.description}</div>
        </li>
      ))}
    </ul>
  );
}

function CaseDetail({ id, say, onBack }: { id: number; say: (s: string) => void; onBack: () => void }) {
  const t = useT();
  const [c, setC] = useState<Case | null>(null);
  const [err, setErr] = useState('');
  const [note, setNote] = useState('');
  const [photo, setPhoto] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    api<Case>(`/incidents/${id}`).then(setC).catch((e) => setErr(message(e)));
  }, [id]);
  useEffect(load, [load]);
  const d = c?.dispatches?.find((x) => x.status === 'dispatched' || x.status === 'handling') ?? c?.dispatches?.[0];

  async function step(kind: 'acknowledge' | 'feedback') {
    if (!d) return;
    setErr('');
    setBusy(true);
    try {
      const attachments: number[] = [];
      if (kind === 'feedback' && photo) {
        const f = new FormData();
        f.set('photo', photo, photo.name || 'photo.jpg');
        attachments.push((await api<{ id: number }>(`/incidents/${id}/attachments`, { method: 'POST', body: f })).id);
      }
      await api(`/incidents/${id}/dispatches/${d.id}/${kind}`, { method: 'POST', body: kind === 'feedback' ? { note, attachments } : {} });
      say(t(kind === 'feedback' ? 'm.feedbackDone' : 'm.acknowledged'));
      setPhoto(null);
      load();
    } catch (e) {
      setErr(message(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="m-card" data-testid="m-case-detail">
      <button className="btn small" onClick={onBack}>‹ {t('m.back')}</button>
      {c && (
        <>
          <h3>#{c.id} {c.category} <span className={`tag ${c.status}`}>{t(`m.status.${c.status}`)}</span></h3>
          <p>{c.description}</p>
          {c.address && <p className="muted small">{c.address}</p>}
          {d && (
            <p className="small">
              <span className="tag" data-testid="m-dispatch-status">{t(`m.dstatus.${d.status}`)}</span> · {t('m.deadline', { at: fmtDateTime(d.deadline) })}
            </p>
          )}
          {d?.status === 'dispatched' && (
            <button className="btn primary m-big" disabled={busy} onClick={() => void step('acknowledge')} data-testid="m-acknowledge">{t('m.acknowledge')}</button>
          )}
          {(d?.status === 'dispatched' || d?.status === 'handling') && (
            <div className="m-feedback">
              <label className="m-field"><span>{t('m.feedbackNote')}</span>
                <textarea value={note} onChange={(e) => setNote(e.target.value)} rows={3} data-testid="m-feedback-note" /></label>
              <label className="m-field m-photo"><span>📷 {photo ? t('m.photoChosen') : t('m.photo')}</span>
                <input type="file" accept="image/jpeg,image/png" capture="environment" onChange={(e) => setPhoto(e.target.files?.[0] ?? null)} data-testid="m-feedback-photo" /></label>
              <button className="btn primary m-big" disabled={busy || !note.trim()} onClick={() => void step('feedback')} data-testid="m-feedback">{t('m.feedback')}</button>
            </div>
          )}
        </>
      )}
      {err && <div className="m-error" data-testid="m-error">{err}</div>}
    </div>
  );
}
