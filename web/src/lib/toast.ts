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

export function toastError(e: unknown): void {
  toast(e instanceof Error ? e.message : String(e), 'error', 6000);
}
