// Sharing grants: who may see (and do) what beyond their own department. A grant is made once
// and then revoked, never edited; a revoked or expired one stays listed when asked for.
import { fmtDateTime } from '../../i18n';
import type { Resource } from '../resource';
import { list, scopeText } from '../scope';

interface Grant {
  id: number;
  kind: string;
  department: string | null;
  user_id: number | null;
  filter: Record<string, unknown>;
  channel_count: number | null;
  actions: string[];
  valid_until: string | null;
  max_uses: number | null;
  uses: number;
  reason: string;
  created_by: string;
  created_at: string;
  state?: string;
}

/** The form's check boxes and the actions they grant. */
const ACTIONS = { a_live: 'media.live', a_playback: 'media.playback', a_download: 'media.download', a_ptz: 'device.ptz' } as const;

export const grants: Resource<Grant> = {
  id: 'grants',
  path: '/access/grants',
  key: (r) => r.id,
  manage: 'access.manage',
  newTitle: 'grant.new',
  // the endpoint answers one page, of up to 500 by default
  paging: { limit: 500 },
  deletion: {
    label: 'grant.revoke',
    confirm: (t, r) => t('grant.revokeConfirm', { id: r.id }),
    when: (r) => r.state === undefined || r.state === 'active',
    reload: true,
  },
  filters: (t) => [{ param: 'include_inactive', kind: 'checkbox', label: t('grant.showInactive'), testid: 'grants-inactive' }],
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'to', label: t('grant.to'), render: (r) => r.department ?? (r.user_id !== null ? `${t('grant.user')} #${r.user_id}` : '—') },
    { key: 'what', label: t('grant.what'), render: (r) => [scopeText(t, r.filter), r.channel_count ? t('grant.nChannels', { n: r.channel_count }) : ''].filter(Boolean).join(' · ') || t('common.all') },
    { key: 'actions', label: t('grant.actions'), render: (r) => r.actions.map((a) => t(`action.${a}`)).join('、') },
    { key: 'valid_until', label: t('grant.until'), render: (r) => (r.valid_until ? fmtDateTime(r.valid_until) : t('grant.forever')) },
    { key: 'kind', label: t('grant.kind'), render: (r) => `${r.kind}${r.state && r.state !== 'active' ? ` · ${r.state}` : ''}` },
    { key: 'reason', label: t('grant.reason') },
    { key: 'created_by', label: t('grant.by'), render: (r) => `${r.created_by} · ${fmtDateTime(r.created_at)}` },
  ],
  fields: (t) => [
    { name: 'department', label: t('grant.toDepartment'), placeholder: t('grant.toDepartmentHint') },
    { name: 'user_id', label: t('grant.toUser'), type: 'number' },
    { name: 'divisions', label: t('grant.divisions'), placeholder: '349901, 349902001' },
    { name: 'departments', label: t('grant.ofDepartments'), placeholder: '公安局, 住建局' },
    { name: 'point_classes', label: t('user.scopeClasses'), placeholder: '1, 2' },
    { name: 'tiers', label: t('user.scopeTiers'), placeholder: 'high, building, street' },
    { name: 'channel_ids', label: t('grant.channels'), type: 'textarea' },
    { name: 'a_live', label: t('action.media.live'), type: 'checkbox' },
    { name: 'a_playback', label: t('action.media.playback'), type: 'checkbox' },
    { name: 'a_download', label: t('action.media.download'), type: 'checkbox' },
    { name: 'a_ptz', label: t('action.device.ptz'), type: 'checkbox' },
    { name: 'valid_until', label: t('grant.until'), placeholder: '2026-12-31' },
    { name: 'reason', label: t('grant.reason'), required: true },
  ],
  // a new grant offers watching live and played back
  toForm: () => ({ a_live: true, a_playback: true }),
  // the lists typed as words, the check boxes as actions, the filter only when it says something
  toBody: (v) => {
    const filter = {
      divisions: list(v.divisions),
      departments: list(v.departments),
      point_classes: list(v.point_classes).map(Number),
      tiers: list(v.tiers),
    };
    const body: Record<string, unknown> = {
      department: v.department || undefined,
      user_id: v.user_id ?? undefined,
      channel_ids: list(v.channel_ids),
      actions: Object.entries(ACTIONS).filter(([box]) => v[box]).map(([, action]) => action),
      reason: v.reason ?? '',
      valid_until: v.valid_until ? new Date(String(v.valid_until)).toISOString() : undefined,
    };
    if (Object.values(filter).some((x) => x.length)) body.filter = filter;
    return body;
  },
  useExtras: ({ t }) => ({ lead: <span className="muted small">{t('grant.hint')}</span> }),
};
