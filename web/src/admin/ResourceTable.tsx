import { useState } from 'react';
import { api } from '../api/client';
import { ListError, Pager, Table, usePaged } from '../components/Data';
import { useT, type T } from '../i18n';
import { useLocation } from '../lib/router';
import { can, useUser } from '../lib/session';
import { toastError } from '../lib/toast';
import { itemPath, type Extras, type Filter, type Resource } from './resource';
import { ResourceForm } from './ResourceForm';

export function confirmDelete(t: T, what: string): boolean {
  return window.confirm(t('admin.confirmDelete', { what }));
}

const noExtras = (): Extras<never> => ({});
const noOptions = () => ({});

/** One administration tab: filters, ＋, the table with edit and delete, paging and the form. */
export function ResourceTable<R extends object>({ res }: { res: Resource<R> }) {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const manage = can(user, res.manage);
  const filters = res.filters(t);
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(filters.map((f) => [f.param, (f.fromUrl && params.get(f.fromUrl)) || ''])));
  const query: Record<string, string | number | boolean | undefined> = { ...res.query };
  for (const f of filters) query[f.param] = f.omitEmpty ? values[f.param] || undefined : values[f.param];
  const list = usePaged<R>(res.path, query);
  const [edit, setEdit] = useState<Partial<R> | null>(null);
  const options = (res.useOptions ?? noOptions)();
  const extras = (res.useExtras ?? (noExtras as () => Extras<R>))({ t, list, manage });
  const set = (f: Filter, v: string) => setValues((s) => ({ ...s, [f.param]: f.digits ? v.replace(/\D/g, '') : v }));
  return (
    <section>
      {extras.top}
      <div className="toolbar">
        {extras.lead}
        {filters.map((f) =>
          f.kind === 'select' ? (
            <select key={f.param} value={values[f.param]} onChange={(e) => set(f, e.target.value)}>
              <option value="">{f.all}</option>
              {(f.options ?? []).map((o) => (
                <option key={o.value} value={o.value}>{o.label}</option>
              ))}
            </select>
          ) : (
            <input
              key={f.param}
              type={f.kind === 'search' ? 'search' : undefined}
              placeholder={f.placeholder}
              value={values[f.param]}
              onChange={(e) => set(f, e.target.value)}
              style={f.width ? { width: f.width } : undefined}
              data-testid={f.testid}
            />
          ),
        )}
        <span className="grow" />
        {extras.toolbar}
        {manage && <button className="btn primary" onClick={() => setEdit(res.blank ? res.blank(values) : {})}>＋ {t(res.newTitle)}</button>}
      </div>
      {extras.above}
      <ListError error={list.error} what={t(`admin.tab.${res.id}`)} />
      <Table<R>
        testid={`${res.id}-table`}
        rows={list.items}
        rowKey={res.key}
        cols={res.columns(t)}
        actions={
          manage
            ? (r) => (
                <>
                  {extras.rowBefore?.(r)}
                  <button className="btn small" onClick={() => setEdit(r)}>{t('common.edit')}</button>
                  {extras.rowAfter?.(r)}
                  {res.deletable !== false && (
                  <button
                    className="btn small danger"
                    onClick={async () => {
                      if (!confirmDelete(t, res.label(r))) return;
                      try {
                        await api(itemPath(res, r), { method: 'DELETE' });
                        list.setItems((l) => l.filter((x) => res.key(x) !== res.key(r)));
                      } catch (e) {
                        toastError(e);
                      }
                    }}
                  >
                    {t('common.delete')}
                  </button>
                  )}
                </>
              )
            : undefined
        }
      />
      <Pager more={list.more} loading={list.loading} count={list.items.length} total={res.total ? list.total : undefined} />
      {edit && <ResourceForm res={res} edit={edit} options={options} onClose={() => setEdit(null)} onSaved={list.reload} />}
    </section>
  );
}
