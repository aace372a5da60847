import { useState } from 'react';
import { api, ApiError, download, qs, raw } from '../api/client';
import type { Channel, Device, ImportReport, PlatformRec, Unit } from '../api/types';
import { STATUSES, TIERS, UNIT_CATEGORIES } from '../api/types';
import { Approvals, Audit, Grants, Users } from './AccessAdmin';
import { StatusDot } from '../components/Common';
import { FormDialog, ListError, Pager, Table, usePaged, type Field } from '../components/Data';
import { fmtDateTime, useT, type T } from '../i18n';
import { Link, navigate, useLocation } from '../lib/router';
import { can, useUser } from '../lib/session';
import { errorText, toast, toastError } from '../lib/toast';
import { Icon } from '../components/Icon';

const TABS = [
  { id: 'units', action: 'registry.read' },
  { id: 'platforms', action: 'registry.read' },
  { id: 'devices', action: 'registry.read' },
  { id: 'channels', action: 'registry.read' },
  { id: 'survey', action: 'registry.manage' },
  { id: 'users', action: 'users.manage' },
  { id: 'grants', action: 'access.read' },
  { id: 'approvals', action: null },
  { id: 'audit', action: 'audit.read' },
] as const;

export default function AdminPage({ tab }: { tab?: string }) {
  const t = useT();
  const user = useUser();
  const tabs = TABS.filter((x) => x.action === null || can(user, x.action));
  const cur = tab && tabs.some((x) => x.id === tab) ? tab : tabs[0]?.id;
  return (
    <div className="page admin">
      <div className="page-head">
        <h2>{t('nav.admin')}</h2>
      </div>
      <nav className="tabs">
        {tabs.map((x) => (
          <Link key={x.id} to={`/app/admin/${x.id}`} className={`tab ${cur === x.id ? 'on' : ''}`}>
            {t(`admin.tab.${x.id}`)}
          </Link>
        ))}
      </nav>
      <div className="tab-body">
        {cur === 'units' && <Units />}
        {cur === 'platforms' && <Platforms />}
        {cur === 'devices' && <Devices />}
        {cur === 'channels' && <Channels />}
        {cur === 'survey' && <Survey />}
        {cur === 'users' && <Users />}
        {cur === 'grants' && <Grants />}
        {cur === 'approvals' && <Approvals />}
        {cur === 'audit' && <Audit />}
        {!cur && <p className="muted">{t('admin.nothing')}</p>}
      </div>
    </div>
  );
}

function confirmDelete(t: T, what: string): boolean {
  return window.confirm(t('admin.confirmDelete', { what }));
}

const catOptions = (t: T) => UNIT_CATEGORIES.map((c) => ({ value: c, label: t(`cat.${c}`) }));

// ---- units ---------------------------------------------------------------------------------
function Units() {
  const t = useT();
  const user = useUser();
  const manage = can(user, 'registry.manage');
  const [q, setQ] = useState('');
  const [department, setDepartment] = useState('');
  const [category, setCategory] = useState('');
  const list = usePaged<Unit>('/units', { q, department, category });
  const [edit, setEdit] = useState<Partial<Unit> | null>(null);
  const fields: Field[] = [
    { name: 'name', label: t('unit.name'), required: true },
    { name: 'category', label: t('unit.category'), type: 'select', options: catOptions(t) },
    { name: 'department', label: t('unit.department') },
    { name: 'division_code', label: t('unit.division'), placeholder: '349901001001' },
    { name: 'address', label: t('unit.address') },
    { name: 'head_contact', label: t('unit.contact') },
  ];
  return (
    <section>
      <div className="toolbar">
        <input type="search" placeholder={t('common.search')} value={q} onChange={(e) => setQ(e.target.value)} />
        <input placeholder={t('unit.department')} value={department} onChange={(e) => setDepartment(e.target.value)} />
        <select value={category} onChange={(e) => setCategory(e.target.value)}>
          <option value="">{t('unit.allCategories')}</option>
          {catOptions(t).map((o) => (
            <option key={o.value} value={o.value}>{o.label}</option>
          ))}
        </select>
        <span className="grow" />
        {manage && <button className="btn primary" onClick={() => setEdit({})}>＋ {t('admin.newUnit')}</button>}
      </div>
      <ListError error={list.error} what={t('admin.tab.units')} />
      <Table<Unit>
        testid="units-table"
        rows={list.items}
        rowKey={(r) => r.id}
        cols={[
          { key: 'id', label: 'ID', className: 'num' },
          { key: 'name', label: t('unit.name') },
          { key: 'category', label: t('unit.category'), render: (r) => (r.category ? t(`cat.${r.category}`) : '—') },
          { key: 'department', label: t('unit.department') },
          { key: 'division_code', label: t('unit.division'), className: 'mono' },
          { key: 'address', label: t('unit.address') },
          { key: 'head_contact', label: t('unit.contact') },
        ]}
        actions={
          manage
            ? (r) => (
                <>
                  <button className="btn small" onClick={() => setEdit(r)}>{t('common.edit')}</button>
                  <button className="btn small" onClick={() => navigate(`/app/admin/platforms?unit=${r.id}`)}>{t('admin.tab.platforms')}</button>
                  <button
                    className="btn small danger"
                    onClick={async () => {
                      if (!confirmDelete(t, r.name)) return;
                      try {
                        await api(`/units/${r.id}`, { method: 'DELETE' });
                        list.setItems((l) => l.filter((x) => x.id !== r.id));
                      } catch (e) {
                        toastError(e);
                      }
                    }}
                  >
                    {t('common.delete')}
                  </button>
                </>
              )
            : undefined
        }
      />
      <Pager more={list.more} loading={list.loading} count={list.items.length} />
      {edit && (
        <FormDialog
          title={edit.id ? t('admin.editUnit') : t('admin.newUnit')}
          fields={fields}
          initial={edit}
          onClose={() => setEdit(null)}
          onSubmit={async (v) => {
            if (edit.id) await api(`/units/${edit.id}`, { method: 'PATCH', body: v });
            else await api('/units', { method: 'POST', body: v });
            toast(t('common.saved'), 'ok');
            list.reload();
          }}
        />
      )}
    </section>
  );
}

// ---- platforms -----------------------------------------------------------------------------
function Platforms() {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const manage = can(user, 'registry.manage');
  const [unit, setUnit] = useState(params.get('unit') ?? '');
  const [q, setQ] = useState('');
  const list = usePaged<PlatformRec>('/platforms', { unit_id: unit || undefined, q });
  const [edit, setEdit] = useState<Partial<PlatformRec> | null>(null);
  const yes = (v: unknown) => (v === null || v === undefined ? '—' : v ? '✓' : '✗');
  const fields: Field[] = [
    { name: 'unit_id', label: t('platform.unit'), type: 'number', required: true, readOnly: !!edit?.id },
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
  ];
  return (
    <section>
      <div className="toolbar">
        <input type="search" placeholder={t('common.search')} value={q} onChange={(e) => setQ(e.target.value)} />
        <input placeholder={t('platform.unitId')} value={unit} onChange={(e) => setUnit(e.target.value.replace(/\D/g, ''))} style={{ width: 120 }} />
        <span className="grow" />
        {manage && <button className="btn primary" onClick={() => setEdit({ unit_id: unit ? Number(unit) : undefined })}>＋ {t('admin.newPlatform')}</button>}
      </div>
      <ListError error={list.error} what={t('admin.tab.platforms')} />
      <Table<PlatformRec>
        testid="platforms-table"
        rows={list.items}
        rowKey={(r) => r.id}
        cols={[
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
        ]}
        actions={
          manage
            ? (r) => (
                <>
                  <button className="btn small" onClick={() => setEdit(r)}>{t('common.edit')}</button>
                  <button
                    className="btn small danger"
                    onClick={async () => {
                      if (!confirmDelete(t, `#${r.id}`)) return;
                      try {
                        await api(`/platforms/${r.id}`, { method: 'DELETE' });
                        list.setItems((l) => l.filter((x) => x.id !== r.id));
                      } catch (e) {
                        toastError(e);
                      }
                    }}
                  >
                    {t('common.delete')}
                  </button>
                </>
              )
            : undefined
        }
      />
      <Pager more={list.more} loading={list.loading} count={list.items.length} />
      {edit && (
        <FormDialog
          title={edit.id ? t('admin.editPlatform') : t('admin.newPlatform')}
          fields={fields}
          initial={edit}
          onClose={() => setEdit(null)}
          onSubmit={async (v) => {
            if (edit.id) {
              delete v.unit_id;
              await api(`/platforms/${edit.id}`, { method: 'PATCH', body: v });
            } else await api('/platforms', { method: 'POST', body: Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null)) });
            toast(t('common.saved'), 'ok');
            list.reload();
          }}
        />
      )}
    </section>
  );
}

// ---- devices -------------------------------------------------------------------------------
function Devices() {
  const t = useT();
  const user = useUser();
  const { params } = useLocation();
  const manage = can(user, 'registry.manage');
  const [q, setQ] = useState('');
  const [admission, setAdmission] = useState(params.get('admission') ?? '');
  const [online, setOnline] = useState('');
  const list = usePaged<Device>('/devices', { q, admission, online });
  const pending = usePaged<Device>('/devices', { admission: 'pending' }, 100);
  const [edit, setEdit] = useState<Partial<Device> | null>(null);

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

  const fields: Field[] = [
    { name: 'id', label: t('device.id'), required: true, readOnly: !!edit?.id, placeholder: '34990100001180000001' },
    { name: 'name', label: t('device.name') },
    { name: 'manufacturer', label: t('device.maker') },
    { name: 'model', label: t('device.model') },
    { name: 'unit_id', label: t('platform.unit'), type: 'number' },
    { name: 'platform_id', label: t('device.platform'), type: 'number' },
    { name: 'password', label: t('device.password'), type: 'password' },
  ];

  return (
    <section>
      {manage && pending.items.length > 0 && (
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
      )}
      <div className="toolbar">
        <input type="search" placeholder={t('device.search')} value={q} onChange={(e) => setQ(e.target.value)} />
        <select value={admission} onChange={(e) => setAdmission(e.target.value)}>
          <option value="">{t('device.allAdmission')}</option>
          {['accepted', 'pending', 'rejected'].map((a) => (
            <option key={a} value={a}>{t(`admission.${a}`)}</option>
          ))}
        </select>
        <select value={online} onChange={(e) => setOnline(e.target.value)}>
          <option value="">{t('device.allOnline')}</option>
          <option value="true">{t('status.online')}</option>
          <option value="false">{t('status.offline')}</option>
        </select>
        <span className="grow" />
        {manage && <button className="btn primary" onClick={() => setEdit({})}>＋ {t('admin.newDevice')}</button>}
      </div>
      <ListError error={list.error} what={t('admin.tab.devices')} />
      <Table<Device>
        testid="devices-table"
        rows={list.items}
        rowKey={(r) => r.id}
        cols={[
          { key: 'online', label: t('device.online'), render: (r) => <span className={`dot ${r.online ? 'st-on' : 'st-off'}`} /> },
          { key: 'id', label: t('device.id'), className: 'mono' },
          { key: 'name', label: t('device.name') },
          { key: 'type_code', label: t('device.type'), className: 'mono' },
          { key: 'manufacturer', label: t('device.maker') },
          { key: 'model', label: t('device.model') },
          { key: 'admission', label: t('device.admission'), render: (r) => <span className={`tag ${r.admission}`}>{t(`admission.${r.admission}`)}</span> },
          { key: 'channel_count', label: t('device.channels'), className: 'num' },
          { key: 'last_keepalive', label: t('device.keepalive'), render: (r) => fmtDateTime(r.last_keepalive) },
        ]}
        actions={
          manage
            ? (r) => (
                <>
                  {r.admission === 'pending' && <button className="btn small primary" onClick={() => admit(r, 'accepted')}>{t('device.accept')}</button>}
                  <button className="btn small" onClick={() => setEdit(r)}>{t('common.edit')}</button>
                  <button
                    className="btn small danger"
                    onClick={async () => {
                      if (!confirmDelete(t, r.name || r.id)) return;
                      try {
                        await api(`/devices/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
                        list.setItems((l) => l.filter((x) => x.id !== r.id));
                      } catch (e) {
                        toastError(e);
                      }
                    }}
                  >
                    {t('common.delete')}
                  </button>
                </>
              )
            : undefined
        }
      />
      <Pager more={list.more} loading={list.loading} count={list.items.length} />
      {edit && (
        <FormDialog
          title={edit.id ? t('admin.editDevice') : t('admin.newDevice')}
          fields={fields}
          initial={edit}
          onClose={() => setEdit(null)}
          onSubmit={async (v) => {
            const body = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null));
            if (edit.id) {
              delete body.id;
              await api(`/devices/${encodeURIComponent(edit.id)}`, { method: 'PATCH', body });
            } else await api('/devices', { method: 'POST', body });
            toast(t('common.saved'), 'ok');
            list.reload();
          }}
        />
      )}
    </section>
  );
}

// ---- channels ------------------------------------------------------------------------------
function Channels() {
  const t = useT();
  const user = useUser();
  const manage = can(user, 'registry.manage');
  const [q, setQ] = useState('');
  const [cls, setCls] = useState('');
  const [tier, setTier] = useState('');
  const [status, setStatus] = useState('');
  const [division, setDivision] = useState('');
  const list = usePaged<Channel>('/channels', { q, class: cls, tier, status, division, with_total: true });
  const [edit, setEdit] = useState<Partial<Channel> | null>(null);
  const [report, setReport] = useState<ImportReport | null>(null);
  const fields: Field[] = [
    { name: 'id', label: t('ch.id'), required: true, readOnly: !!edit?.id },
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
  ];
  return (
    <section>
      <div className="toolbar">
        <input type="search" placeholder={t('tree.search')} value={q} onChange={(e) => setQ(e.target.value)} data-testid="channels-search" />
        <input placeholder={t('unit.division')} value={division} onChange={(e) => setDivision(e.target.value.replace(/\D/g, ''))} style={{ width: 130 }} />
        <select value={cls} onChange={(e) => setCls(e.target.value)}>
          <option value="">{t('map.class')}</option>
          {[1, 2, 3].map((c) => (
            <option key={c} value={c}>{t(`class.${c}`)}</option>
          ))}
        </select>
        <select value={tier} onChange={(e) => setTier(e.target.value)}>
          <option value="">{t('map.tier')}</option>
          {TIERS.map((x) => (
            <option key={x} value={x}>{t(`tier.${x}`)}</option>
          ))}
        </select>
        <select value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">{t('map.status')}</option>
          {STATUSES.map((x) => (
            <option key={x} value={x}>{x}</option>
          ))}
        </select>
        <span className="grow" />
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
        {manage && <button className="btn primary" onClick={() => setEdit({})}>＋ {t('admin.newChannel')}</button>}
      </div>
      {report && <ImportResult report={report} onClose={() => setReport(null)} />}
      <ListError error={list.error} what={t('admin.tab.channels')} />
      <Table<Channel>
        testid="channels-table"
        rows={list.items}
        rowKey={(r) => r.id}
        cols={[
          { key: 'status', label: t('ch.status'), render: (r) => <><StatusDot status={r.status} /> {r.status}</> },
          { key: 'id', label: t('ch.id'), className: 'mono', render: (r) => <Link to={`/app/channel/${r.id}`}>{r.id}</Link> },
          { key: 'name', label: t('ch.name') },
          { key: 'point_class', label: t('ch.class'), render: (r) => (r.point_class ? t(`class.${r.point_class}`) : '—') },
          { key: 'tier', label: t('ch.tier'), render: (r) => (r.tier ? t(`tier.${r.tier}`) : '—') },
          { key: 'department', label: t('ch.department') },
          { key: 'division_code', label: t('unit.division'), className: 'mono' },
          { key: 'lonlat', label: t('ch.coords'), render: (r) => (r.longitude !== null && r.latitude !== null ? `${r.longitude.toFixed(5)}, ${r.latitude.toFixed(5)}` : <span className="warn-text">{t('ch.unlabelled')}</span>) },
          { key: 'networked', label: t('ch.networked') },
        ]}
        actions={
          manage
            ? (r) => (
                <>
                  <button className="btn small" onClick={() => setEdit(r)}>{t('common.edit')}</button>
                  <button
                    className="btn small danger"
                    onClick={async () => {
                      if (!confirmDelete(t, r.name)) return;
                      try {
                        await api(`/channels/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
                        list.setItems((l) => l.filter((x) => x.id !== r.id));
                      } catch (e) {
                        toastError(e);
                      }
                    }}
                  >
                    {t('common.delete')}
                  </button>
                </>
              )
            : undefined
        }
      />
      <Pager more={list.more} loading={list.loading} count={list.items.length} total={list.total} />
      {edit && (
        <FormDialog
          title={edit.id ? t('admin.editChannel') : t('admin.newChannel')}
          fields={fields}
          initial={{ ...edit, point_class: edit.point_class ? String(edit.point_class) : '' }}
          onClose={() => setEdit(null)}
          onSubmit={async (v) => {
            const body: Record<string, unknown> = { ...v, point_class: v.point_class ? Number(v.point_class) : null };
            if (edit.id) {
              delete body.id;
              await api(`/channels/${encodeURIComponent(edit.id)}`, { method: 'PATCH', body: Object.fromEntries(Object.entries(body).filter(([k, x]) => x !== null || k in edit)) });
            } else await api('/channels', { method: 'POST', body: Object.fromEntries(Object.entries(body).filter(([, x]) => x !== null)) });
            toast(t('common.saved'), 'ok');
            list.reload();
          }}
        />
      )}
    </section>
  );
}

// ---- survey import / export ----------------------------------------------------------------
async function upload(path: string, file: File, fields: Record<string, string | boolean>): Promise<ImportReport> {
  const fd = new FormData();
  fd.append('file', file);
  for (const [k, v] of Object.entries(fields)) if (v !== '' && v !== false) fd.append(k, String(v));
  try {
    const res = await raw(path, { method: 'POST', body: fd });
    return (await res.json()) as ImportReport;
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && Array.isArray((e.problem as unknown as ImportReport).problems)) return e.problem as unknown as ImportReport;
    return { ok: false, rows: 0, created: 0, updated: 0, unchanged: 0, new_units: [], problems: [{ row: null, column: null, value: null, reason: errorText(e) }], warnings: [], file: file.name };
  }
}

function Survey() {
  const t = useT();
  const [file, setFile] = useState<File | null>(null);
  const [department, setDepartment] = useState('');
  const [dry, setDry] = useState(true);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [kind, setKind] = useState<'survey' | 'channels'>('survey');
  async function go() {
    if (!file) return;
    setBusy(true);
    setReport(null);
    try {
      setReport(await upload(kind === 'survey' ? '/survey/import' : '/channels/import', file, kind === 'survey' ? { department, dry_run: dry } : { dry_run: dry }));
    } finally {
      setBusy(false);
    }
  }
  return (
    <section className="survey">
      <div className="card">
        <div className="card-title">{t('survey.import')}</div>
        <p className="muted small">{t('survey.hint')}</p>
        <div className="form-row">
          <label className="field">
            <span>{t('survey.kind')}</span>
            <select value={kind} onChange={(e) => setKind(e.target.value as 'survey' | 'channels')}>
              <option value="survey">{t('survey.kind.survey')}</option>
              <option value="channels">{t('survey.kind.channels')}</option>
            </select>
          </label>
          <label className="field">
            <span>{t('survey.file')}</span>
            <input type="file" accept=".xlsx,.csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} data-testid="survey-file" />
          </label>
          {kind === 'survey' && (
            <label className="field">
              <span>{t('survey.department')}</span>
              <input value={department} onChange={(e) => setDepartment(e.target.value)} placeholder={t('survey.departmentHint')} />
            </label>
          )}
          <label className="field inline">
            <input type="checkbox" checked={dry} onChange={(e) => setDry(e.target.checked)} data-testid="survey-dry" />
            <span>{t('survey.dryRun')}</span>
          </label>
          <button className="btn primary" disabled={!file || busy} onClick={go} data-testid="survey-submit">
            {busy ? <span className="spinner" /> : <Icon name="upload" />} {dry ? t('survey.check') : t('survey.importNow')}
          </button>
        </div>
      </div>
      {report && <ImportResult report={report} dry={dry} onClose={() => setReport(null)} />}
      <div className="card">
        <div className="card-title">{t('survey.export')}</div>
        <div className="row gap wrap">
          {(['survey', 'summary'] as const).map((form) =>
            (['xlsx', 'csv'] as const).map((fmt) => (
              <button key={form + fmt} className="btn small" onClick={() => void download(`/survey/export${qs({ form, format: fmt, department: department || undefined })}`, `${form}.${fmt}`).catch(toastError)}>
                <Icon name="download" /> {t(`survey.form.${form}`)} ({fmt})
              </button>
            )),
          )}
          <button className="btn small" onClick={() => void download('/channels.xlsx', 'channels.xlsx').catch(toastError)}><Icon name="download" /> {t('admin.exportChannels')}</button>
        </div>
      </div>
    </section>
  );
}

/** The import report in place: counts, then every problem as a row of a table. */
function ImportResult({ report, dry, onClose }: { report: ImportReport; dry?: boolean; onClose: () => void }) {
  const t = useT();
  return (
    <div className={`card report ${report.ok ? 'ok' : 'bad'}`} data-testid="import-report">
      <div className="card-title">
        {report.ok ? '✓' : '✗'} {report.ok ? (dry ? t('survey.okDry') : t('survey.ok')) : t('survey.bad', { n: report.problems.length })}
        {report.file && <span className="muted small"> · {report.file}</span>}
        <span className="grow" />
        <button className="icon-btn" onClick={onClose}>✕</button>
      </div>
      <div className="report-counts">
        <span>{t('survey.rows')}: <b>{report.rows}</b></span>
        <span>{t('survey.created')}: <b>{report.created}</b></span>
        <span>{t('survey.updated')}: <b>{report.updated}</b></span>
        <span>{t('survey.unchanged')}: <b>{report.unchanged}</b></span>
        {report.new_units?.length > 0 && <span>{t('survey.newUnits')}: <b>{report.new_units.length}</b></span>}
      </div>
      {!report.ok && <p className="muted small">{t('survey.nothingWritten')}</p>}
      {report.problems.length > 0 && (
        <table className="table problems" data-testid="import-problems">
          <thead>
            <tr>
              <th className="num">{t('survey.row')}</th>
              <th>{t('survey.column')}</th>
              <th>{t('survey.value')}</th>
              <th>{t('survey.reason')}</th>
            </tr>
          </thead>
          <tbody>
            {report.problems.map((p, i) => (
              <tr key={i}>
                <td className="num">{p.row ?? '—'}</td>
                <td>{p.column ?? '—'}</td>
                <td className="mono">{p.value ?? ''}</td>
                <td>{p.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {report.warnings?.length > 0 && (
        <ul className="warnings">
          {report.warnings.map((w, i) => (
            <li key={i}>⚠ {w}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
