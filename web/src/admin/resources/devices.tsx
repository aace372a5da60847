import type { Device } from '../../api/types';
import { api } from '../../api/client';
import { Table, usePaged } from '../../components/Data';
import { fmtDateTime } from '../../i18n';
import { toast, toastError } from '../../lib/toast';
import type { Resource } from '../resource';

export const devices: Resource<Device> = {
  id: 'devices',
  path: '/devices',
  key: (r) => r.id,
  label: (r) => r.name || r.id,
  manage: 'registry.manage',
  newTitle: 'admin.newDevice',
  editTitle: 'admin.editDevice',
  filters: (t) => [
    { param: 'q', kind: 'search', placeholder: t('device.search') },
    { param: 'admission', kind: 'select', all: t('device.allAdmission'), options: ['accepted', 'pending', 'rejected'].map((a) => ({ value: a, label: t(`admission.${a}`) })), fromUrl: 'admission' },
    { param: 'online', kind: 'select', all: t('device.allOnline'), options: [{ value: 'true', label: t('status.online') }, { value: 'false', label: t('status.offline') }] },
  ],
  columns: (t) => [
    { key: 'online', label: t('device.online'), render: (r) => <span className={`dot ${r.online ? 'st-on' : 'st-off'}`} /> },
    { key: 'id', label: t('device.id'), className: 'mono' },
    { key: 'name', label: t('device.name') },
    { key: 'type_code', label: t('device.type'), className: 'mono' },
    { key: 'manufacturer', label: t('device.maker') },
    { key: 'model', label: t('device.model') },
    { key: 'admission', label: t('device.admission'), render: (r) => <span className={`tag ${r.admission}`}>{t(`admission.${r.admission}`)}</span> },
    { key: 'channel_count', label: t('device.channels'), className: 'num' },
    { key: 'last_keepalive', label: t('device.keepalive'), render: (r) => fmtDateTime(r.last_keepalive) },
  ],
  fields: (t) => [
    { name: 'id', label: t('device.id'), required: true, fixed: true, placeholder: '34990100001180000001' },
    { name: 'name', label: t('device.name') },
    { name: 'manufacturer', label: t('device.maker') },
    { name: 'model', label: t('device.model') },
    { name: 'unit_id', label: t('platform.unit'), type: 'number' },
    { name: 'platform_id', label: t('device.platform'), type: 'number' },
    { name: 'password', label: t('device.password'), type: 'password' },
  ],
  dropNulls: { create: true, update: 'all' },
  // devices that registered without being in the registry, to accept or reject, above the list
  useExtras: ({ t, list, manage }) => {
    const pending = usePaged<Device>('/devices', { admission: 'pending' }, 100);
    async function admit(d: Device, admission: 'accepted' | 'rejected') {
      try {
        await api(`/devices/${encodeURIComponent(d.id)}`, { method: 'PATCH', body: { admission } });
        toast(t(admission === 'accepted' ? 'device.acceptedMsg' : 'device.rejectedMsg', { id: d.name || d.id }), 'ok');
        pending.setItems((l) => l.filter((x) => x.id !== d.id));
        list.setItems((l) => l.map((x) => (x.id === d.id ? { ...x, admission } : x)));
      } catch (e) {
        toastError(e);
      }
    }
    return {
      top: manage && pending.items.length > 0 && (
        <div className="card pending" data-testid="pending-devices">
          <div className="card-title">⚠ {t('device.pendingTitle', { n: pending.items.length })}</div>
          <p className="muted small">{t('device.pendingHint')}</p>
          <Table<Device>
            rows={pending.items}
            rowKey={(r) => r.id}
            cols={[
              { key: 'id', label: t('device.id'), className: 'mono' },
              { key: 'name', label: t('device.name') },
              { key: 'manufacturer', label: t('device.maker') },
              { key: 'remote_host', label: t('device.address'), render: (r) => (r.remote_host ? `${r.remote_host}:${r.remote_port ?? ''} ${r.transport ?? ''}` : '—') },
              { key: 'registered_at', label: t('device.registered'), render: (r) => fmtDateTime(r.registered_at) },
            ]}
            actions={(r) => (
              <>
                <button className="btn small primary" onClick={() => admit(r, 'accepted')} data-testid="accept-device">{t('device.accept')}</button>
                <button className="btn small danger" onClick={() => admit(r, 'rejected')}>{t('device.reject')}</button>
              </>
            )}
          />
        </div>
      ),
      rowBefore: (r) => r.admission === 'pending' && <button className="btn small primary" onClick={() => admit(r, 'accepted')}>{t('device.accept')}</button>,
    };
  },
};
