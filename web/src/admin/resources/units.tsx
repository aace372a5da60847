import type { Unit } from '../../api/types';
import { UNIT_CATEGORIES } from '../../api/types';
import type { T } from '../../i18n';
import { navigate } from '../../lib/router';
import type { Resource } from '../resource';

const catOptions = (t: T) => UNIT_CATEGORIES.map((c) => ({ value: c, label: t(`cat.${c}`) }));

export const units: Resource<Unit> = {
  id: 'units',
  path: '/units',
  key: (r) => r.id,
  label: (r) => r.name,
  manage: 'registry.manage',
  newTitle: 'admin.newUnit',
  editTitle: 'admin.editUnit',
  filters: (t) => [
    { param: 'q', kind: 'search', placeholder: t('common.search') },
    { param: 'department', kind: 'text', placeholder: t('unit.department') },
    { param: 'category', kind: 'select', all: t('unit.allCategories'), options: catOptions(t) },
  ],
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'name', label: t('unit.name') },
    { key: 'category', label: t('unit.category'), render: (r) => (r.category ? t(`cat.${r.category}`) : '—') },
    { key: 'department', label: t('unit.department') },
    { key: 'division_code', label: t('unit.division'), className: 'mono' },
    { key: 'address', label: t('unit.address') },
    { key: 'head_contact', label: t('unit.contact') },
  ],
  fields: (t) => [
    { name: 'name', label: t('unit.name'), required: true },
    { name: 'category', label: t('unit.category'), type: 'select', options: catOptions(t) },
    { name: 'department', label: t('unit.department') },
    { name: 'division_code', label: t('unit.division'), placeholder: '349901001001' },
    { name: 'address', label: t('unit.address') },
    { name: 'head_contact', label: t('unit.contact') },
  ],
  useExtras: ({ t }) => ({
    rowAfter: (r) => <button className="btn small" onClick={() => navigate(`/app/admin/platforms?unit=${r.id}`)}>{t('admin.tab.platforms')}</button>,
  }),
};
