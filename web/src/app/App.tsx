import { lazy, Suspense, useEffect, useRef, useState, type ReactNode } from 'react';
import { api, qs, setSession } from '../api/client';
import { FormDialog } from '../components/Data';
import { toast } from '../lib/toast';
import type { Channel, Page } from '../api/types';
import { AlarmBell } from '../components/Alarms';
import { ApprovalHost, PurposeHost, Spinner, StatusDot, Toasts } from '../components/Common';
import { fmtTime, localeStore, useLocale, useT } from '../i18n';
import { resetPoints } from '../lib/points';
import { Link, match, navigate, useLocation } from '../lib/router';
import { can, logout, refreshMe, useUser } from '../lib/session';
import { useStore } from '../lib/store';
import { usePolling } from '../lib/poll';
import { patrolRun, stopPatrol } from '../lib/wall';
import LoginPage from '../pages/LoginPage';

const MapPage = lazy(() => import('../pages/MapPage'));
const WallPage = lazy(() => import('../pages/WallPage'));
const PatrolsPage = lazy(() => import('../pages/PatrolsPage'));
const ResourcesPage = lazy(() => import('../pages/ResourcesPage'));
const DashboardPage = lazy(() => import('../pages/DashboardPage'));
const AdminPage = lazy(() => import('../pages/AdminPage'));
const ChannelPage = lazy(() => import('../pages/ChannelPage'));
const OperationsPage = lazy(() => import('../pages/OperationsPage'));
const MyTicketsPage = lazy(() => import('../pages/MyTicketsPage'));
const IncidentsPage = lazy(() => import('../pages/IncidentsPage'));
const ExportsPage = lazy(() => import('../pages/ExportsPage'));

const NAV = [
  { to: '/app/map', key: 'nav.map', action: 'registry.read' },
  { to: '/app/wall', key: 'nav.wall', action: 'media.live' },
  { to: '/app/patrols', key: 'nav.patrols', action: 'media.live' },
  { to: '/app/resources', key: 'nav.resources', action: 'registry.read' },
  { to: '/app/dashboard', key: 'nav.dashboard', action: 'stats.read' },
  { to: '/app/operations', key: 'nav.operations', action: 'health.read' },
  { to: '/app/tickets', key: 'nav.myTickets', action: 'tickets.work' },
  { to: '/app/incidents', key: 'nav.incidents', action: 'incidents.read' },
  { to: '/app/exports', key: 'nav.exports', action: 'media.export' },
  { to: '/app/admin', key: 'nav.admin', action: 'registry.read' },
];

export function App() {
  const user = useUser();
  const { path } = useLocation();

  useEffect(() => {
    const onUnauthorized = () => {
      if (!localStorage.getItem('xl.token')) return;
      logout();
      resetPoints();
      stopPatrol();
      navigate(`/app/login?expired=1&next=${encodeURIComponent(location.pathname)}`, true);
    };
    window.addEventListener('xl:unauthorized', onUnauthorized);
    return () => window.removeEventListener('xl:unauthorized', onUnauthorized);
  }, []);

  useEffect(() => {
    if (user) void refreshMe();
    // once per load
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (!user || path === '/app/login') {
    if (!user && path !== '/app/login') {
      const next = path.startsWith('/app/') ? `?next=${encodeURIComponent(path + location.search)}` : '';
      queueMicrotask(() => navigate(`/app/login${next}`, true));
    }
    if (user && path === '/app/login') queueMicrotask(() => navigate('/app/', true));
    return (
      <>
        <LoginPage />
        <Toasts />
      </>
    );
  }
  const home = NAV.find((n) => can(user, n.action))?.to ?? '/app/map';
  if (path === '/' || path === '/app' || path === '/app/') queueMicrotask(() => navigate(home, true));

  let page: ReactNode = null;
  let m: Record<string, string> | null;
  if (path.startsWith('/app/map')) page = <MapPage />;
  else if (path.startsWith('/app/wall')) page = <WallPage />;
  else if (path.startsWith('/app/patrols')) page = <PatrolsPage />;
  else if (path.startsWith('/app/resources')) page = <ResourcesPage />;
  else if (path.startsWith('/app/dashboard')) page = <DashboardPage />;
  else if (path.startsWith('/app/operations')) page = <OperationsPage />;
  else if (path.startsWith('/app/tickets')) page = <MyTicketsPage />;
  else if (path.startsWith('/app/incidents')) page = <IncidentsPage />;
  else if (path.startsWith('/app/exports')) page = <ExportsPage />;
  else if ((m = match('/app/admin/:tab', path))) page = <AdminPage tab={m.tab} />;
  else if (path === '/app/admin') page = <AdminPage />;
  else if ((m = match('/app/channel/:id', path))) page = <ChannelPage id={m.id} />;
  else page = <NotFound />;

  return (
    <div className="shell">
      <TopBar />
      <main className="content">
        <Suspense fallback={<Spinner />}>{page}</Suspense>
      </main>
      <PurposeHost />
      <ApprovalHost />
      <Toasts />
    </div>
  );
}

function NotFound() {
  const t = useT();
  return (
    <div className="page">
      <h2>{t('app.notFound')}</h2>
      <Link to="/app/map">{t('nav.map')}</Link>
    </div>
  );
}

/** For those who decide approvals: how many wait for them, checked every 30 s. */
function PendingApprovals() {
  const t = useT();
  const [n, setN] = useState(0);
  usePolling(async (alive) => {
    const todo = await api<unknown[]>('/approvals?box=todo');
    if (alive()) setN(todo.length);
  }, 30000);
  if (!n) return null;
  return (
    <Link to="/app/admin/approvals" className="btn small warn">
      <span title={t('approvals.pendingHint')} data-testid="pending-approvals">{t('approvals.pending', { n })}</span>
    </Link>
  );
}

function TopBar() {
  const t = useT();
  const user = useUser();
  const locale = useLocale();
  const { path } = useLocation();
  const run = useStore(patrolRun);
  const [now, setNow] = useState(new Date());
  const [pw, setPw] = useState(false);
  useEffect(() => {
    const h = window.setInterval(() => setNow(new Date()), 1000);
    return () => window.clearInterval(h);
  }, []);
  return (
    <header className="topbar">
      <Link to="/app/map" className="brand">
        <span className="logo" />
        <span className="brand-name">{t('app.name')}</span>
      </Link>
      <nav className="nav">
        {NAV.filter((n) => can(user, n.action)).map((n) => (
          <Link key={n.to} to={n.to} className={`nav-item ${path.startsWith(n.to) ? 'on' : ''}`}>
            {t(n.key)}
            {n.to === '/app/wall' && run && !run.paused && <span className="live-dot" title={t('patrol.running')} />}
          </Link>
        ))}
      </nav>
      <span className="grow" />
      {can(user, 'access.approve') && <PendingApprovals />}
      {can(user, 'device.query') && <AlarmBell />}
      <ChannelSearch />
      <span className="clock mono" title={Intl.DateTimeFormat().resolvedOptions().timeZone}>{fmtTime(now)}</span>
      <button className="btn ghost small" onClick={() => localeStore.set(locale === 'zh' ? 'en' : 'zh')} data-testid="locale-switch">
        {locale === 'zh' ? 'EN' : '中文'}
      </button>
      <button className="user-chip" title={[user?.department, user?.division_code].filter(Boolean).join(' · ')} onClick={() => setPw(true)}>
        <span className="avatar">{(user?.display_name || user?.username || '?').slice(0, 1).toUpperCase()}</span>
        <span>
          <b>{user?.display_name || user?.username}</b>
          <small>{t(`role.${user?.role}`)}{user?.department ? ` · ${user.department}` : ''}</small>
        </span>
      </button>
      <button
        className="btn ghost small"
        onClick={() => {
          void api('/auth/logout', { method: 'POST' }).catch(() => undefined);
          logout();
          resetPoints();
          stopPatrol();
          navigate('/app/login', true);
        }}
        data-testid="logout"
      >
        {t('login.logout')}
      </button>
      {pw && (
        <FormDialog
          title={t('login.changePassword')}
          fields={[
            { name: 'current_password', label: t('login.currentPassword'), type: 'password', required: true },
            { name: 'new_password', label: t('login.newPassword'), type: 'password', required: true },
          ]}
          onClose={() => setPw(false)}
          onSubmit={async (v) => {
            const r = await api<{ access_token?: string }>('/auth/password', { method: 'POST', body: v });
            if (r?.access_token) setSession(r.access_token, user);
            toast(t('login.passwordChanged'), 'ok');
          }}
        />
      )}
    </header>
  );
}

/** Find a channel by name, ID or address from anywhere; Enter on a 20-digit ID opens it. */
function ChannelSearch() {
  const t = useT();
  const [q, setQ] = useState('');
  const [res, setRes] = useState<Channel[]>([]);
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const s = q.trim();
    if (!s) {
      setRes([]);
      return;
    }
    const h = window.setTimeout(() => {
      api<Page<Channel>>(`/channels${qs({ q: s, limit: 12 })}`)
        .then((r) => setRes(r.items))
        .catch(() => setRes([]));
    }, 200);
    return () => window.clearTimeout(h);
  }, [q]);
  useEffect(() => {
    const h = (e: MouseEvent) => !box.current?.contains(e.target as Node) && setOpen(false);
    document.addEventListener('mousedown', h);
    return () => document.removeEventListener('mousedown', h);
  }, []);
  const go = (id: string) => {
    setOpen(false);
    setQ('');
    navigate(`/app/channel/${id}`);
  };
  return (
    <div className="gsearch" ref={box}>
      <input
        type="search"
        placeholder={t('search.placeholder')}
        value={q}
        onChange={(e) => {
          setQ(e.target.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            const s = q.trim();
            if (/^\d{20}$/.test(s)) go(s);
            else if (res[0]) go(res[0].id);
          }
        }}
        data-testid="global-search"
      />
      {open && q.trim() && (
        <div className="gsearch-list">
          {res.map((c) => (
            <button key={c.id} className="gsearch-item" onClick={() => go(c.id)}>
              <StatusDot status={c.status} /> <span>{c.name}</span>
              <small className="mono muted">{c.id}</small>
            </button>
          ))}
          {res.length === 0 && /^\d{20}$/.test(q.trim()) && (
            <button className="gsearch-item" onClick={() => go(q.trim())}>{t('search.openId', { id: q.trim() })}</button>
          )}
          {res.length === 0 && !/^\d{20}$/.test(q.trim()) && <div className="gsearch-item muted">{t('common.none')}</div>}
        </div>
      )}
    </div>
  );
}
