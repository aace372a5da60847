import { createStore } from './store';

export interface Toast {
  id: number;
  kind: 'info' | 'ok' | 'error' | 'warn';
  text: string;
}

export const toasts = createStore<Toast[]>([]);
let seq = 0;

export function toast(text: string, kind: Toast['kind'] = 'info', ms = 4000): void {
  const id = ++seq;
  toasts.set((l) => [...l, { id, kind, text }]);
  window.setTimeout(() => toasts.set((l) => l.filter((x) => x.id !== id)), ms);
}

/** What to tell a person about a failure (an API problem's detail, or whatever was thrown). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function toastError(e: unknown): void {
  toast(errorText(e), 'error', 6000);
}
