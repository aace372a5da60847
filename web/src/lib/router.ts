import { createElement, type MouseEvent, type ReactNode } from 'react';
import { createStore, useStore } from './store';

// The console's pages live under /app/ (the platform serves index.html there).
const loc = createStore({ path: location.pathname, search: location.search });
window.addEventListener('popstate', () => loc.set({ path: location.pathname, search: location.search }));

export function navigate(to: string, replace = false): void {
  const u = new URL(to, location.origin);
  if (u.pathname === location.pathname && u.search === location.search) return;
  if (replace) history.replaceState(null, '', u.pathname + u.search);
  else history.pushState(null, '', u.pathname + u.search);
  loc.set({ path: u.pathname, search: u.search });
}

export function useLocation(): { path: string; search: string; params: URLSearchParams } {
  const l = useStore(loc);
  return { ...l, params: new URLSearchParams(l.search) };
}

/** Match `/app/channel/:id` style patterns; returns the named parts or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length && !pattern.endsWith('*')) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '*') return out;
    if (p[i].startsWith(':')) out[p[i].slice(1)] = decodeURIComponent(s[i] ?? '');
    else if (p[i] !== s[i]) return null;
  }
  return out;
}

export function Link(props: { to: string; className?: string; children: ReactNode; title?: string }) {
  return createElement(
    'a',
    {
      href: props.to,
      className: props.className,
      title: props.title,
      onClick: (e: MouseEvent) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      },
    },
    props.children,
  );
}
