import type { PlatformRec } from '../../api/types';
import type { Resource } from '../resource';

const yes = (v: unknown) => (v === null || v === undefined ? '—' : v ? '✓' : '✗');

export const platforms: Resource<PlatformRec> = {
  id: 'platforms',
  path: '/platforms',
  key: (r) => r.id,
  label: (r) => `#${r.id}`,
  manage: 'registry.manage',
  newTitle: 'admin.newPlatform',
  editTitle: 'admin.editPlatform',
  filters: (t) => [
    { param: 'q', kind: 'search', placeholder: t('common.search') },
    { param: 'unit_id', kind: 'text', placeholder: t('platform.unitId'), digits: true, width: 120, fromUrl: 'unit', omitEmpty: true },
  ],
  blank: (f) => ({ unit_id: f.unit_id ? Number(f.unit_id) : undefined }),
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'unit_id', label: t('platform.unit'), className: 'num' },
    { key: 'kind', label: t('platform.kind'), render: (r) => (r.kind ? t(`platform.kind.${r.kind}`) : '—') },
    { key: 'platform_maker', label: t('platform.maker') },
    { key: 'platform_model', label: t('platform.model') },
    { key: 'platform_standard', label: t('platform.standard'), render: (r) => yes(r.platform_standard) },
    { key: 'camera_count', label: t('platform.cameras'), className: 'num' },
    { key: 'retention_days', label: t('platform.retention'), className: 'num' },
    { key: 'network', label: t('platform.network'), render: (r) => (r.network ? t(`net.${r.network}`) : '—') },
    { key: 'gb_id', label: t('platform.gbId'), className: 'mono' },
  ],
  fields: (t) => [
    { name: 'unit_id', label: t('platform.unit'), type: 'number', required: true, fixed: true },
    { name: 'kind', label: t('platform.kind'), type: 'select', options: [{ value: 'platform', label: t('platform.kind.platform') }, { value: 'none', label: t('platform.kind.none') }] },
    { name: 'platform_maker', label: t('platform.maker') },
    { name: 'platform_model', label: t('platform.model') },
    { name: 'platform_standard', label: t('platform.standard'), type: 'checkbox' },
    { name: 'camera_count', label: t('platform.cameras'), type: 'number' },
    { name: 'recorder_count', label: t('platform.recorders'), type: 'number' },
    { name: 'network', label: t('platform.network'), type: 'select', options: ['none', 'lan', 'internet', 'other'].map((x) => ({ value: x, label: t(`net.${x}`) })) },
    { name: 'storage_mode', label: t('platform.storage'), type: 'select', options: ['server', 'recorder', 'other'].map((x) => ({ value: x, label: t(`storage.${x}`) })) },
    { name: 'retention_days', label: t('platform.retention'), type: 'number' },
    { name: 'gb_id', label: t('platform.gbId'), placeholder: '20 位国标编码' },
    { name: 'rtsp_url', label: 'RTSP', placeholder: 'rtsp://…' },
    { name: 'faults', label: t('platform.faults'), type: 'textarea' },
  ],
  dropNulls: { create: true },
};
