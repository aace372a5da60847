import { useEffect, useState } from 'react';
import { api } from '../../api/client';
import type { User } from '../../api/types';
import { ROLES } from '../../api/types';
import { fmtDateTime } from '../../i18n';
import { MESSAGES } from '../../i18n/messages';
import { useUser } from '../../lib/session';
import { toast, toastError } from '../../lib/toast';
import type { Resource } from '../resource';
import { list, scopeText } from '../scope';

Object.assign(MESSAGES, {
  'role.agency': ['联动单位（110/119/120/122）', 'Linked agency (110/119/120/122)'],
  'user.departmentNeed': ['部门：网格员填所属网格（如 网格一，事件分派到它），联动单位填其对接名称；留空为不限部门', 'Department: a grid member\'s grid (e.g. 网格一: cases are dispatched to it), an agency\'s link; empty: every department'],
  'user.divisionNeed': ['区划编码：网格员填网格所在的村或社区；留空为不限', 'Division code: a grid member\'s village or community; empty: everywhere'],
});

interface UserRow extends User {
  scope?: Record<string, unknown>;
  disabled?: boolean;
  totp?: boolean;
  locked_until?: string | null;
  last_login_at?: string | null;
}

export const users: Resource<UserRow> = {
  id: 'users',
  path: '/users',
  key: (r) => r.id,
  label: (r) => r.username,
  manage: 'users.manage',
  newTitle: 'admin.newUser',
  editTitle: 'admin.editUser',
  titleOf: (r) => r.username ?? '',
  deletion: false,
  filters: () => [],
  columns: (t) => [
    { key: 'username', label: t('user.username'), render: (r) => <>{r.username}{r.disabled && <span className="tag rejected"> {t('user.disabled')}</span>}</> },
    { key: 'display_name', label: t('user.displayName') },
    { key: 'role', label: t('user.role'), render: (r) => t(`role.${r.role}`) },
    { key: 'department', label: t('user.department'), render: (r) => r.department ?? <span className="muted">{t('user.allDepartments')}</span> },
    { key: 'division_code', label: t('user.division'), render: (r) => r.division_code ?? <span className="muted">{t('user.allDivisions')}</span> },
    { key: 'scope', label: t('user.scope'), render: (r) => scopeText(t, r.scope) || <span className="muted">—</span> },
    { key: 'totp', label: t('user.totp'), render: (r) => (r.totp ? '✓' : <span className="muted">—</span>) },
    { key: 'last_login_at', label: t('user.lastLogin'), render: (r) => fmtDateTime(r.last_login_at) },
  ],
  // the roles the platform knows (but 'system', for API clients), else the console's copy of
  // them (the same list: web/test/roles.test.mjs)
  useOptions: () => {
    const [roles, setRoles] = useState<string[]>([...ROLES]);
    useEffect(() => {
      api<Record<string, string[]>>('/roles')
        .then((r) => setRoles(Object.keys(r).filter((x) => x !== 'system')))
        .catch(() => undefined);
    }, []);
    return { roles: roles.map((r) => ({ value: r, label: r })) };
  },
  fields: (t, { editing, options }) => [
    { name: 'username', label: t('user.username'), required: true, fixed: true },
    { name: 'display_name', label: t('user.displayName') },
    ...(editing ? [] : [{ name: 'password', label: t('user.password'), type: 'password' as const, required: true }]),
    { name: 'role', label: t('user.role'), type: 'select', options: (options.roles ?? []).map((r) => ({ value: r.value, label: t(`role.${r.value}`) })), required: true },
    { name: 'department', label: t('user.department'), placeholder: t('user.departmentNeed') },
    { name: 'division_code', label: t('user.division'), placeholder: t('user.divisionNeed') },
    { name: 'scope_classes', label: t('user.scopeClasses'), placeholder: '1, 2' },
    { name: 'scope_tiers', label: t('user.scopeTiers'), placeholder: 'high, building, street' },
    { name: 'scope_groups', label: t('user.groups'), placeholder: t('user.groupsHint') },
    ...(editing ? [{ name: 'disabled', label: t('user.disabled'), type: 'checkbox' as const }] : []),
  ],
  // the scope as three lists of words in the form
  toForm: (u) => ({
    ...u,
    scope_classes: ((u.scope?.point_classes as number[]) ?? []).join(', '),
    scope_tiers: ((u.scope?.tiers as string[]) ?? []).join(', '),
    scope_groups: ((u.scope?.groups as string[]) ?? []).join(', '),
  }),
  toBody: (v, editing) => {
    const scope = {
      point_classes: list(v.scope_classes).map(Number).filter((n) => n >= 1 && n <= 3),
      tiers: list(v.scope_tiers),
      groups: list(v.scope_groups),
    };
    const body: Record<string, unknown> = { ...v, scope };
    delete body.scope_classes;
    delete body.scope_tiers;
    delete body.scope_groups;
    return editing ? body : { ...body, display_name: body.display_name ?? '' };
  },
  // password and second-factor resets, ending sessions
  useExtras: ({ t, list: rows }) => {
    const me = useUser();
    async function act(what: string, f: () => Promise<unknown>) {
      try {
        await f();
        toast(what, 'ok');
        rows.reload();
      } catch (e) {
        toastError(e);
      }
    }
    return {
      lead: <span className="muted small">{t('user.scopeHint')}</span>,
      rowAfter: (r) => (
        <>
          <button
            className="btn small"
            onClick={() => {
              const pw = window.prompt(t('user.newPasswordFor', { name: r.username }));
              if (pw) void act(t('user.passwordSet'), () => api(`/users/${r.id}/password`, { method: 'POST', body: { password: pw } }));
            }}
          >
            {t('user.resetPassword')}
          </button>
          {r.totp && (
            <button className="btn small" onClick={() => window.confirm(t('user.resetTotpConfirm', { name: r.username })) && act(t('user.totpReset'), () => api(`/users/${r.id}/totp`, { method: 'DELETE' }))}>
              {t('user.resetTotp')}
            </button>
          )}
          {r.id !== me?.id && (
            <button className="btn small danger" onClick={() => act(t('user.sessionsRevoked'), () => api(`/users/${r.id}/revoke-sessions`, { method: 'POST' }))}>
              {t('user.revokeSessions')}
            </button>
          )}
        </>
      ),
    };
  },
};
