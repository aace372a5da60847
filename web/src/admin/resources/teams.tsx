// Maintenance teams and companies (运维单位): their contacts, what each answers for ("who builds
// it maintains it": units, platforms or division subtrees) and the users who work its tickets.
// The nested lists are edited as lines of text, one item a line.
import type { Resource } from '../resource';

interface Contact {
  name: string;
  phone: string;
  email: string;
}

interface Team {
  id: number;
  name: string;
  company: string;
  contacts: Contact[];
  email: string | null;
  supervisor_email: string | null;
  webhook_url: string | null;
  duties: { kind: string; ref: string }[];
  members: number[];
}

const lines = (v: unknown) => String(v ?? '').split('\n').map((l) => l.trim()).filter(Boolean);

export const teams: Resource<Team> = {
  id: 'teams',
  path: '/maintenance/teams',
  key: (r) => r.id,
  label: (r) => r.name,
  manage: 'maintenance.manage',
  newTitle: 'team.new',
  editTitle: 'team.edit',
  titleOf: (r) => r.name ?? '',
  paging: { limit: 1000 },
  replace: true,
  filters: () => [],
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'name', label: t('team.name') },
    { key: 'company', label: t('team.company') },
    { key: 'contacts', label: t('team.contacts'), render: (r) => r.contacts.map((c) => [c.name, c.phone].filter(Boolean).join(' ')).join('；') || '—' },
    { key: 'duties', label: t('team.duties'), render: (r) => <span className="mono small">{r.duties.map((d) => `${t(`team.kind.${d.kind}`)} ${d.ref}`).join('、') || '—'}</span> },
    { key: 'members', label: t('team.members'), className: 'num', render: (r) => r.members.length },
    { key: 'email', label: t('team.email') },
  ],
  fields: (t) => [
    { name: 'name', label: t('team.name'), required: true },
    { name: 'company', label: t('team.company') },
    { name: 'contacts', label: t('team.contactsHint'), type: 'textarea', placeholder: '张工, 13800000000, zhang@example.cn' },
    { name: 'duties', label: t('team.dutiesHint'), type: 'textarea', placeholder: 'unit 12\ndivision 340102' },
    { name: 'members', label: t('team.membersHint'), placeholder: '7, 9' },
    { name: 'email', label: t('team.email') },
    { name: 'supervisor_email', label: t('team.supervisor') },
    { name: 'webhook_url', label: t('team.webhook'), placeholder: 'https://…' },
  ],
  toForm: (r) => ({
    ...r,
    contacts: (r.contacts ?? []).map((c) => [c.name, c.phone, c.email].join(', ')).join('\n'),
    duties: (r.duties ?? []).map((d) => `${d.kind} ${d.ref}`).join('\n'),
    members: (r.members ?? []).join(', '),
  }),
  // what is malformed goes to the endpoint as typed, and comes back as its error in place
  toBody: (v) => ({
    ...v,
    company: v.company ?? '',
    contacts: lines(v.contacts).map((l) => {
      const [name = '', phone = '', email = ''] = l.split(/[,，]/).map((x) => x.trim());
      return { name, phone, email };
    }),
    duties: lines(v.duties).map((l) => {
      const [kind = '', ref = ''] = l.split(/[\s:：]+/);
      return { kind, ref };
    }),
    members: String(v.members ?? '').split(/[,，\s]+/).filter(Boolean).map((x) => (/^\d+$/.test(x) ? Number(x) : x)),
  }),
};
