import { api } from '../api/client';
import { FormDialog } from '../components/Data';
import { useT } from '../i18n';
import { toast } from '../lib/toast';
import { itemPath, type FieldContext, type Resource } from './resource';

/** The create / edit dialog of a resource, from its description. */
export function ResourceForm<R extends object>({ res, edit, options, onClose, onSaved }: { res: Resource<R>; edit: Partial<R>; options: FieldContext['options']; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const editing = res.key(edit as R) !== undefined && res.key(edit as R) !== null && res.key(edit as R) !== '';
  const described = res.fields?.(t, { editing, options }) ?? [];
  const fields = described.map(({ fixed, ...f }) => ({ ...f, readOnly: f.readOnly || (!!fixed && editing) }));
  const fixed = described.filter((f) => f.fixed).map((f) => f.name);
  return (
    <FormDialog
      title={editing ? t(res.editTitle ?? '') + (res.titleOf ? ` · ${res.titleOf(edit)}` : '') : t(res.newTitle ?? '')}
      fields={fields}
      initial={res.toForm ? res.toForm(edit) : (edit as Record<string, unknown>)}
      onClose={onClose}
      onSubmit={async (v) => {
        const body = res.toBody ? res.toBody(v, editing) : { ...v };
        if (editing) {
          for (const k of fixed) delete body[k];
          const drop = res.dropNulls?.update;
          const sent = drop ? Object.fromEntries(Object.entries(body).filter(([k, x]) => x !== null || (drop === 'unknown' && k in edit))) : body;
          await api(itemPath(res, edit), { method: res.replace ? 'PUT' : 'PATCH', body: sent });
        } else {
          const sent = res.dropNulls?.create ? Object.fromEntries(Object.entries(body).filter(([, x]) => x !== null)) : body;
          await api(res.path, { method: 'POST', body: sent });
        }
        toast(t('common.saved'), 'ok');
        onSaved();
      }}
    />
  );
}
