import { createStore, useStore } from '../lib/store';
import { MESSAGES } from './messages';

export type Locale = 'zh' | 'en';

const saved = localStorage.getItem('xl.locale');
export const localeStore = createStore<Locale>(saved === 'en' ? 'en' : 'zh');
localeStore.subscribe(() => {
  const l = localeStore.get();
  localStorage.setItem('xl.locale', l);
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
});
document.documentElement.lang = localeStore.get() === 'zh' ? 'zh-CN' : 'en';

export type T = (key: string, vars?: Record<string, string | number>) => string;

export function translate(locale: Locale, key: string, vars?: Record<string, string | number>): string {
  const m = MESSAGES[key];
  let s = m ? m[locale === 'zh' ? 0 : 1] : key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

export const t: T = (key, vars) => translate(localeStore.get(), key, vars);

export function useT(): T {
  const l = useStore(localeStore);
  return (key, vars) => translate(l, key, vars);
}

export function useLocale(): Locale {
  return useStore(localeStore);
}

// ---- local-time formatting ----------------------------------------------------------------
function tag(): string {
  return localeStore.get() === 'zh' ? 'zh-CN' : 'en-GB';
}

export function fmtDateTime(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(tag(), { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export function fmtTime(v: Date | number): string {
  const d = v instanceof Date ? v : new Date(v);
  return d.toLocaleTimeString(tag(), { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export function fmtNum(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return n.toLocaleString(tag());
}

export function fmtPct(r: number | null | undefined, digits = 1): string {
  if (r === null || r === undefined || Number.isNaN(r)) return '—';
  return `${(r * 100).toFixed(digits)}%`;
}
