import { useState } from 'react';
import { download } from '../../api/client';
import type { Channel, ImportReport } from '../../api/types';
import { STATUSES, TIERS } from '../../api/types';
import { StatusDot } from '../../components/Common';
import { Icon } from '../../components/Icon';
import { Link } from '../../lib/router';
import { toastError } from '../../lib/toast';
import { ImportResult, upload } from '../ImportResult';
import type { Resource } from '../resource';

export const channels: Resource<Channel> = {
  id: 'channels',
  path: '/channels',
  key: (r) => r.id,
  label: (r) => r.name,
  manage: 'registry.manage',
  newTitle: 'admin.newChannel',
  editTitle: 'admin.editChannel',
  query: { with_total: true },
  total: true,
  filters: (t) => [
    { param: 'q', kind: 'search', placeholder: t('tree.search'), testid: 'channels-search' },
    { param: 'division', kind: 'text', placeholder: t('unit.division'), digits: true, width: 130 },
    { param: 'class', kind: 'select', all: t('map.class'), options: [1, 2, 3].map((c) => ({ value: String(c), label: t(`class.${c}`) })) },
    { param: 'tier', kind: 'select', all: t('map.tier'), options: TIERS.map((x) => ({ value: x, label: t(`tier.${x}`) })) },
    { param: 'status', kind: 'select', all: t('map.status'), options: STATUSES.map((x) => ({ value: x, label: x })) },
  ],
  columns: (t) => [
    { key: 'status', label: t('ch.status'), render: (r) => <><StatusDot status={r.status} /> {r.status}</> },
    { key: 'id', label: t('ch.id'), className: 'mono', render: (r) => <Link to={`/app/channel/${r.id}`}>{r.id}</Link> },
    { key: 'name', label: t('ch.name') },
    { key: 'point_class', label: t('ch.class'), render: (r) => (r.point_class ? t(`class.${r.point_class}`) : '—') },
    { key: 'tier', label: t('ch.tier'), render: (r) => (r.tier ? t(`tier.${r.tier}`) : '—') },
    { key: 'department', label: t('ch.department') },
    { key: 'division_code', label: t('unit.division'), className: 'mono' },
    { key: 'lonlat', label: t('ch.coords'), render: (r) => (r.longitude !== null && r.latitude !== null ? `${r.longitude.toFixed(5)}, ${r.latitude.toFixed(5)}` : <span className="warn-text">{t('ch.unlabelled')}</span>) },
    { key: 'networked', label: t('ch.networked') },
  ],
  fields: (t) => [
    { name: 'id', label: t('ch.id'), required: true, fixed: true },
    { name: 'name', label: t('ch.name'), required: true },
    { name: 'device_id', label: t('ch.device') },
    { name: 'unit_id', label: t('platform.unit'), type: 'number' },
    { name: 'division_code', label: t('unit.division') },
    { name: 'point_class', label: t('ch.class'), type: 'select', options: [1, 2, 3].map((c) => ({ value: String(c), label: t(`class.${c}`) })) },
    { name: 'coverage', label: t('ch.coverage'), type: 'select', options: ['A', 'B', 'C'].map((c) => ({ value: c, label: t(`coverage.${c}`) })) },
    { name: 'tier', label: t('ch.tier'), type: 'select', options: TIERS.map((x) => ({ value: x, label: t(`tier.${x}`) })) },
    { name: 'longitude', label: t('ch.lon'), type: 'number' },
    { name: 'latitude', label: t('ch.lat'), type: 'number' },
    { name: 'address', label: t('ch.address') },
    { name: 'key_site', label: t('ch.keySite'), type: 'checkbox' },
    { name: 'rtsp_url', label: 'RTSP', placeholder: 'rtsp://…' },
  ],
  // the class is a number to the endpoint, a string to the select
  toForm: (r) => ({ ...r, point_class: r.point_class ? String(r.point_class) : '' }),
  toBody: (v) => ({ ...v, point_class: v.point_class ? Number(v.point_class) : null }),
  dropNulls: { create: true, update: 'unknown' },
  // export and import of the channel list, with the import's report in place
  useExtras: ({ t, list, manage }) => {
    const [report, setReport] = useState<ImportReport | null>(null);
    return {
      toolbar: (
        <>
          <button className="btn small" onClick={() => void download('/channels.xlsx', 'channels.xlsx').catch(toastError)}><Icon name="download" /> {t('admin.exportChannels')}</button>
          {manage && (
            <label className="btn small">
              <Icon name="upload" /> {t('admin.importChannels')}
              <input
                type="file"
                hidden
                accept=".xlsx,.csv"
                onChange={async (e) => {
                  const f = e.target.files?.[0];
                  e.target.value = '';
                  if (!f) return;
                  setReport(await upload('/channels/import', f, {}));
                  list.reload();
                }}
              />
            </label>
          )}
        </>
      ),
      above: report && <ImportResult report={report} onClose={() => setReport(null)} />,
    };
  },
};
