import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { api, ApiError, qs } from '../api/client';
import type { Page } from '../api/types';
import { useT } from '../i18n';
import { ErrorBox, Modal, NotAvailable, Refusal } from './Common';

/** How a list endpoint pages: the page size, the query parameter that carries the cursor and
 *  the answer's field holding the next one (most lists: `cursor` / `next_cursor`; the audit log
 *  pages by sequence number, `before` / `next_before`). A list answered as a plain array has one page. */
export interface Paging {
  limit?: number;
  cursor?: string;
  next?: string;
}

/** Keyset-paged listing: first page on change of params, "more" appends. */
export function usePaged<T>(path: string, params: Record<string, string | number | boolean | null | undefined>, paging: number | Paging = {}) {
  const { limit = 50, cursor: cursorParam = 'cursor', next = 'next_cursor' } = typeof paging === 'number' ? { limit: paging } : paging;
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | number | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [total, setTotal] = useState<number | null>(null);
  const key = path + JSON.stringify(params) + limit + cursorParam;
  const gen = useRef(0);

  const load = useCallback(
    async (more: boolean) => {
      const g = ++gen.current;
      setLoading(true);
      setError(null);
      try {
        const r = await api<(Page<T> & Record<string, unknown>) | T[]>(path + qs({ ...params, limit, [cursorParam]: more ? cursor : undefined }));
        if (g !== gen.current) return;
        const page = Array.isArray(r) ? { items: r } : r;
        const after = Array.isArray(r) ? null : r[next];
        setItems((old) => (more ? old.concat(page.items) : page.items));
        setCursor(typeof after === 'string' || typeof after === 'number' ? after : null);
        if (!Array.isArray(r) && typeof r.total === 'number') setTotal(r.total);
      } catch (e) {
        if (g === gen.current) setError(e);
      } finally {
        if (g === gen.current) setLoading(false);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key, cursor],
  );

  useEffect(() => {
    setItems([]);
    setCursor(null);
    setTotal(null);
    void load(false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  return { items, setItems, more: cursor ? () => load(true) : null, loading, error, total, reload: () => load(false) };
}

export interface Col<T> {
  key: string;
  label: string;
  render?: (row: T) => ReactNode;
  className?: string;
}

export function Table<T>({ cols, rows, rowKey, empty, testid, actions }: { cols: Col<T>[]; rows: T[]; rowKey: (r: T) => string | number; empty?: ReactNode; testid?: string; actions?: (r: T) => ReactNode }) {
  const t = useT();
  return (
    <div className="table-wrap">
      <table className="table" data-testid={testid}>
        <thead>
          <tr>
            {cols.map((c) => (
              <th key={c.key} className={c.className}>{c.label}</th>
            ))}
            {actions && <th className="actions">{t('common.actions')}</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)}>
              {cols.map((c) => (
                <td key={c.key} className={c.className}>
                  {c.render ? c.render(r) : fmtCell((r as Record<string, unknown>)[c.key])}
                </td>
              ))}
              {actions && <td className="actions">{actions(r)}</td>}
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={cols.length + (actions ? 1 : 0)} className="empty">{empty ?? t('common.none')}</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

function fmtCell(v: unknown): ReactNode {
  if (v === null || v === undefined || v === '') return <span className="muted">—</span>;
  if (typeof v === 'boolean') return v ? '✓' : '✗';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** What a listing shows when it failed: refusal, not-deployed, or the error. */
export function ListError({ error, what }: { error: unknown; what: string }) {
  if (!error) return null;
  if (error instanceof ApiError && error.refused) return <Refusal detail={error.message} what={what} />;
  if (error instanceof ApiError && error.missing && /^not found$/i.test(error.message)) return <NotAvailable what={what} />;
  return <ErrorBox error={error} />;
}

export function Pager({ more, loading, count, total }: { more: (() => void) | null; loading: boolean; count: number; total?: number | null }) {
  const t = useT();
  return (
    <div className="pager">
      <span className="muted small">{total !== null && total !== undefined ? t('common.countOf', { n: count, total }) : t('common.count', { n: count })}</span>
      {loading && <span className="spinner" />}
      {more && !loading && (
        <button className="btn small" onClick={more}>{t('common.more')}</button>
      )}
    </div>
  );
}

export interface Field {
  name: string;
  label: string;
  type?: 'text' | 'number' | 'select' | 'checkbox' | 'password' | 'textarea';
  options?: { value: string; label: string }[];
  required?: boolean;
  placeholder?: string;
  readOnly?: boolean;
}

/** A form in a dialog; `onSubmit` gets the values (empty strings as null) and may throw. */
export function FormDialog({ title, fields, initial, onSubmit, onClose }: { title: string; fields: Field[]; initial?: Record<string, unknown>; onSubmit: (v: Record<string, unknown>) => Promise<void>; onClose: () => void }) {
  const t = useT();
  const [v, setV] = useState<Record<string, unknown>>(() => ({ ...(initial ?? {}) }));
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function submit() {
    setBusy(true);
    setErr(null);
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      if (f.readOnly) continue;
      let x = v[f.name];
      if (x === '' || x === undefined) x = f.type === 'checkbox' ? false : null;
      if (f.type === 'number' && x !== null) x = Number(x);
      out[f.name] = x;
    }
    try {
      await onSubmit(out);
      onClose();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Modal
      title={title}
      onClose={onClose}
      footer={
        <>
          <button className="btn" onClick={onClose}>{t('common.cancel')}</button>
          <button className="btn primary" disabled={busy} onClick={submit} data-testid="form-submit">{t('common.save')}</button>
        </>
      }
    >
      <div className="form-grid">
        {fields.map((f) => (
          <label key={f.name} className={`field ${f.type === 'checkbox' ? 'inline' : ''}`}>
            <span>
              {f.label}
              {f.required && <b className="req">*</b>}
            </span>
            {f.type === 'select' ? (
              <select value={String(v[f.name] ?? '')} onChange={(e) => setV({ ...v, [f.name]: e.target.value })} disabled={f.readOnly} name={f.name}>
                <option value="">—</option>
                {f.options?.map((o) => (
                  <option key={o.value} value={o.value}>{o.label}</option>
                ))}
              </select>
            ) : f.type === 'checkbox' ? (
              <input type="checkbox" checked={!!v[f.name]} onChange={(e) => setV({ ...v, [f.name]: e.target.checked })} name={f.name} />
            ) : f.type === 'textarea' ? (
              <textarea value={String(v[f.name] ?? '')} onChange={(e) => setV({ ...v, [f.name]: e.target.value })} rows={3} name={f.name} />
            ) : (
              <input
                type={f.type ?? 'text'}
                value={String(v[f.name] ?? '')}
                onChange={(e) => setV({ ...v, [f.name]: e.target.value })}
                placeholder={f.placeholder}
                readOnly={f.readOnly}
                name={f.name}
              />
            )}
          </label>
        ))}
      </div>
      <ErrorBox error={err} />
    </Modal>
  );
}
