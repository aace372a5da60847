// Upper platforms (上级平台, cascade): where this platform registers as a lower platform, the
// state of each link, and what each is shown (its share). Signalling managers only.
import type { T } from '../../i18n';
import { fmtDateTime } from '../../i18n';
import type { Resource } from '../resource';
import { list } from '../scope';

interface Group {
  id: string;
  name: string;
}

interface Organisation extends Group {
  parent_id?: string | null;
  divisions?: string[];
  departments?: string[];
  channels?: string[];
}

export interface Share {
  all?: boolean;
  divisions?: string[];
  classes?: number[];
  departments?: string[];
  channels?: string[];
  control?: boolean;
  business_group?: Group | null;
  organisations?: Organisation[];
  id_map?: Record<string, string>;
}

export interface Upper {
  id: number;
  name: string;
  sip_id: string;
  domain: string | null;
  host: string;
  port: number;
  transport: string;
  register_expires: number;
  keepalive_interval: number;
  keepalive_max_missed: number;
  local_sip_id: string | null;
  charset: string;
  rtp_transport: string;
  announce_host: string | null;
  announce_port: number | null;
  enabled: boolean;
  has_password: boolean;
  share: Share;
  status: { state: string; last_error?: string | null; registered_until?: string | null; subscriptions?: number };
}

/** The share in a few words. */
export function shareText(t: T, s: Share | undefined): string {
  if (!s || (!s.all && !s.divisions?.length && !s.classes?.length && !s.departments?.length && !s.channels?.length)) {
    return t('upper.shareNothing');
  }
  const parts: string[] = [];
  if (s.all) parts.push(t('common.all'));
  if (s.divisions?.length) parts.push(s.divisions.join(','));
  if (s.classes?.length) parts.push(s.classes.map((c) => t(`class.${c}`)).join('/'));
  if (s.departments?.length) parts.push(s.departments.join(','));
  if (s.channels?.length) parts.push(t('upper.nChannels', { n: s.channels.length }));
  if (s.control) parts.push(t('upper.control'));
  if (s.id_map && Object.keys(s.id_map).length) parts.push(t('upper.mapped', { n: Object.keys(s.id_map).length }));
  return parts.join(' · ');
}

/** `local=upper` lines, as the form shows the ID map. */
const mapText = (m: Record<string, string> | undefined) =>
  Object.entries(m ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');

function mapOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(v)) {
    const [k, x] = pair.split('=');
    if (k && x) out[k.trim()] = x.trim();
  }
  return out;
}

export const uppers: Resource<Upper> = {
  id: 'uppers',
  path: '/cascade/uppers',
  key: (r) => r.id,
  label: (r) => r.name,
  manage: 'signalling.manage',
  newTitle: 'upper.new',
  editTitle: 'upper.edit',
  titleOf: (r) => r.name ?? '',
  paging: { limit: 1000 },
  filters: () => [],
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'name', label: t('upper.name') },
    { key: 'sip_id', label: t('upper.sipId'), className: 'mono' },
    { key: 'host', label: t('upper.address'), className: 'mono', render: (r) => `${r.host}:${r.port}/${r.transport.toUpperCase()}` },
    { key: 'charset', label: t('upper.charset') },
    { key: 'share', label: t('upper.share'), render: (r) => shareText(t, r.share) },
    {
      key: 'state',
      label: t('upper.state'),
      render: (r) => (
        <span data-testid={`upper-state-${r.id}`} title={r.status?.last_error ?? ''} className={`state-${r.status?.state}`}>
          {t(`upper.state.${r.enabled ? r.status?.state : 'closed'}`)}
          {r.status?.registered_until ? ` · ${fmtDateTime(r.status.registered_until)}` : ''}
          {r.status?.last_error ? ` · ${r.status.last_error}` : ''}
        </span>
      ),
    },
  ],
  fields: (t, { editing }) => [
    { name: 'name', label: t('upper.name'), required: true },
    { name: 'sip_id', label: t('upper.sipId'), required: true, placeholder: '20 位国标编码' },
    { name: 'domain', label: t('upper.domain'), placeholder: t('upper.domainHint') },
    { name: 'host', label: t('upper.host'), required: true },
    { name: 'port', label: t('upper.port'), type: 'number', required: true },
    { name: 'transport', label: t('upper.transport'), type: 'select', options: ['udp', 'tcp'].map((x) => ({ value: x, label: x.toUpperCase() })) },
    { name: 'password', label: editing ? t('upper.passwordKeep') : t('upper.password'), type: 'password', required: !editing },
    { name: 'register_expires', label: t('upper.registerExpires'), type: 'number' },
    { name: 'keepalive_interval', label: t('upper.keepalive'), type: 'number' },
    { name: 'local_sip_id', label: t('upper.localSipId'), placeholder: t('upper.localSipIdHint') },
    { name: 'charset', label: t('upper.charset'), type: 'select', options: ['GB2312', 'UTF-8'].map((x) => ({ value: x, label: x })) },
    { name: 'rtp_transport', label: t('upper.rtp'), type: 'select', options: ['udp', 'tcp-active', 'tcp-passive'].map((x) => ({ value: x, label: x })) },
    { name: 'announce_host', label: t('upper.announceHost') },
    { name: 'announce_port', label: t('upper.announcePort'), type: 'number' },
    { name: 'enabled', label: t('upper.enabled'), type: 'checkbox' },
    { name: 'share_all', label: t('upper.shareAll'), type: 'checkbox' },
    { name: 'share_divisions', label: t('upper.shareDivisions'), placeholder: '3402, 340301' },
    { name: 'share_classes', label: t('upper.shareClasses'), placeholder: '1, 2' },
    { name: 'share_departments', label: t('upper.shareDepartments'), placeholder: '公安局, 交警支队' },
    { name: 'share_channels', label: t('upper.shareChannels'), type: 'textarea' },
    { name: 'share_control', label: t('upper.shareControl'), type: 'checkbox' },
    { name: 'bg_id', label: t('upper.businessGroupId'), placeholder: '…215…' },
    { name: 'bg_name', label: t('upper.businessGroupName') },
    { name: 'organisations', label: t('upper.organisations'), type: 'textarea', placeholder: '[{"id": "…216…", "name": "一分局", "divisions": ["340201"]}]' },
    { name: 'id_map', label: t('upper.idMap'), type: 'textarea', placeholder: '34020100001310000001=44030000001310000001' },
  ],
  blank: () => ({ port: 5060, transport: 'udp', charset: 'GB2312', rtp_transport: 'udp', enabled: true, register_expires: 3600, keepalive_interval: 60 } as Partial<Upper>),
  toForm: (r) => {
    const s = r.share ?? {};
    return {
      ...r,
      password: '',
      share_all: !!s.all,
      share_divisions: (s.divisions ?? []).join(', '),
      share_classes: (s.classes ?? []).join(', '),
      share_departments: (s.departments ?? []).join(', '),
      share_channels: (s.channels ?? []).join('\n'),
      share_control: !!s.control,
      bg_id: s.business_group?.id ?? '',
      bg_name: s.business_group?.name ?? '',
      organisations: s.organisations?.length ? JSON.stringify(s.organisations, null, 1) : '',
      id_map: mapText(s.id_map),
    };
  },
  toBody: (v) => {
    const share: Share = {
      all: !!v.share_all,
      divisions: list(v.share_divisions),
      classes: list(v.share_classes).map(Number),
      departments: list(v.share_departments),
      channels: list(v.share_channels),
      control: !!v.share_control,
      id_map: mapOf(v.id_map),
    };
    if (v.bg_id) share.business_group = { id: String(v.bg_id), name: String(v.bg_name || v.bg_id) };
    if (v.organisations) share.organisations = JSON.parse(String(v.organisations)) as Organisation[];
    const body: Record<string, unknown> = { share };
    for (const k of ['name', 'sip_id', 'domain', 'host', 'port', 'transport', 'password', 'register_expires', 'keepalive_interval',
      'local_sip_id', 'charset', 'rtp_transport', 'announce_host', 'announce_port', 'enabled']) {
      body[k] = v[k];
    }
    return body;
  },
  dropNulls: { create: true, update: 'all' },
};
