import { useState } from 'react';
import { api } from '../api/client';
import { ListError, Pager, Table, usePaged } from '../components/Data';
import { useT, type T } from '../i18n';
import { useLocation } from '../lib/router';
import { can, useUser } from '../lib/session';
import { toastError } from '../lib/toast';
import { filterQuery, initialValue, itemPath, type Extras, type Filter, type Resource } from './resource';
import { ResourceForm } from './ResourceForm';

export function confirmDelete(t: T, what: string): boolean {
  return window.confirm(t('admin.confirmDelete', { what }));
}

const noExtras = (): Extras<never> => ({});
const noOptions = () => ({});

/** One filter's control in the toolbar. */
function FilterInput({ f, value, set }: { f: Filter; value: string; set: (v: string) => void }) {
  switch (f.kind) {
    case 'select':
      return (
        <select value={value} onChange={(e) => set(e.target.value)} data-testid={f.testid}>
          <option value="">{f.all}</option>
          {(f.options ?? []).map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
      );
    case 'segmented':
      return (
        <span className="seg" data-testid={f.testid}>
          {(f.options ?? []).map((o) => (
            <button key={o.value} className={`btn small ${value === o.value ? 'on' : ''}`} onClick={() => set(o.value)} data-value={o.value}>
              {o.label}
            </button>
          ))}
        </span>
      );
    case 'checkbox':
      return (
        <label className="field inline">
          <input type="checkbox" checked={value === 'true'} onChange={(e) => set(e.target.checked ? 'true' : '')} data-testid={f.testid} />
          <span>{f.label}</span>
        </label>
      );
    case 'datetime':
      return (
        <label className="field inline">
          <span>{f.label}</span>
          <input type="datetime-local" value={value} onChange={(e) => set(e.target.value)} data-testid={f.testid} />
        </label>
      );
    default:
      return (
        <input
          type={f.kind === 'search' ? 'search' : undefined}
          placeholder={f.placeholder}
          value={value}
          onChange={(e) => set(e.target.value)}
          style={f.width ? { width: f.width } : undefined}
          data-testid={f.testid}
        />
      );
  }
}

/** One administration tab: filters, ＋, the table with its row buttons, paging and the form. */
export function ResourceTable<R extends object>({ res }: { res: Resource<R> }) {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const manage = !!res.manage && can(user, res.manage);
  const filters = res.filters(t, { can: (action) => can(user, action) });
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(filters.map((f) => [f.param, initialValue(f, params)])));
  // what the list was read with: the values as typed, or as they were when searched
  const [searched, setSearched] = useState(values);
  const applied = res.searchButton ? searched : values;
  const query = { ...res.query, ...filterQuery(filters, applied) };
  const list = usePaged<R>(res.path, query, res.paging);
  const [edit, setEdit] = useState<Partial<R> | null>(null);
  const options = (res.useOptions ?? noOptions)();
  const extras = (res.useExtras ?? (noExtras as () => Extras<R>))({ t, list, manage, values: applied, query });
  const set = (f: Filter, v: string) => setValues((s) => ({ ...s, [f.param]: f.digits ? v.replace(/\D/g, '') : v }));
  const deletion = res.deletion === false ? null : (res.deletion ?? {});
  async function remove(r: R) {
    if (!deletion) return;
    if (!(deletion.confirm ? window.confirm(deletion.confirm(t, r)) : confirmDelete(t, res.label ? res.label(r) : String(res.key(r))))) return;
    try {
      await api(itemPath(res, r), { method: 'DELETE' });
      if (deletion.reload) list.reload();
      else list.setItems((l) => l.filter((x) => res.key(x) !== res.key(r)));
    } catch (e) {
      toastError(e);
    }
  }
  const rowButtons = (r: R) => (
    <>
      {manage && (
        <>
          {extras.rowBefore?.(r)}
          {res.editTitle && <button className="btn small" onClick={() => setEdit(r)} data-testid="row-edit">{t('common.edit')}</button>}
          {extras.rowAfter?.(r)}
          {deletion && (!deletion.when || deletion.when(r)) && (
            <button className="btn small danger" onClick={() => void remove(r)} data-testid="row-delete">{t(deletion.label ?? 'common.delete')}</button>
          )}
        </>
      )}
      {extras.row?.(r)}
    </>
  );
  return (
    <section>
      {extras.top}
      <div className="toolbar">
        {extras.lead}
        {filters.map((f) => (
          <FilterInput key={f.param} f={f} value={values[f.param] ?? ''} set={(v) => set(f, v)} />
        ))}
        {res.searchButton && <button className="btn primary" onClick={() => setSearched({ ...values })} data-testid={res.searchButton}>{t('common.search')}</button>}
        <span className="grow" />
        {extras.toolbar}
        {manage && res.newTitle && <button className="btn primary" onClick={() => setEdit(res.blank ? res.blank(values) : {})} data-testid={`${res.id}-new`}>＋ {t(res.newTitle)}</button>}
      </div>
      {extras.above}
      <ListError error={list.error} what={t(`admin.tab.${res.id}`)} />
      <Table<R> testid={`${res.id}-table`} rows={list.items} rowKey={res.key} cols={res.columns(t)} actions={manage || extras.row ? rowButtons : undefined} />
      <Pager more={list.more} loading={list.loading} count={list.items.length} total={res.total ? list.total : undefined} />
      {edit && <ResourceForm res={res} edit={edit} options={options} onClose={() => setEdit(null)} onSaved={list.reload} />}
    </section>
  );
}
