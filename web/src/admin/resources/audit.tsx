// The audit log for auditors: search by person, camera, department, action, outcome and time,
// newest first; export what was searched; verify the hash chain. Nothing is managed here.
import { useState } from 'react';
import { api, download, qs } from '../../api/client';
import { Icon } from '../../components/Icon';
import { fmtDateTime } from '../../i18n';
import { toastError } from '../../lib/toast';
import type { Resource } from '../resource';

interface AuditRow {
  seq: number;
  at: string;
  actor: string | null;
  role: string | null;
  actor_department: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  resource_department: string | null;
  ip: string | null;
  purpose: string | null;
  case_ref: string | null;
  outcome: string;
  status: number | null;
  detail: unknown;
}

interface Verification {
  ok: boolean;
  records: number;
  problems: unknown[];
  seconds: number;
}

/** The outcomes the platform records (docs/access.md): `partial` is a login waiting for its second factor. */
const OUTCOMES = ['ok', 'denied', 'failed', 'error', 'partial'];

export const audit: Resource<AuditRow> = {
  id: 'audit',
  path: '/audit/records',
  key: (r) => r.seq,
  // the log is paged by sequence number, newest first
  paging: { limit: 100, cursor: 'before', next: 'next_before' },
  // a search over the whole log is costly: it runs when asked, not at every key typed
  searchButton: 'audit-search',
  filters: (t) => [
    { param: 'actor', kind: 'text', placeholder: t('audit.user'), width: 120, testid: 'audit-actor' },
    { param: 'channel', kind: 'text', placeholder: t('audit.channel'), width: 190, testid: 'audit-channel' },
    { param: 'department', kind: 'text', placeholder: t('ch.department'), width: 110, testid: 'audit-department' },
    { param: 'action', kind: 'text', placeholder: t('audit.actionHint'), width: 130, testid: 'audit-action' },
    { param: 'outcome', kind: 'select', all: t('audit.anyOutcome'), options: OUTCOMES.map((o) => ({ value: o, label: o })), testid: 'audit-outcome' },
    { param: 'since', kind: 'datetime', label: t('audit.from'), testid: 'audit-since' },
    { param: 'until', kind: 'datetime', label: t('audit.to'), testid: 'audit-until' },
  ],
  columns: (t) => [
    { key: 'seq', label: '#', className: 'num' },
    { key: 'at', label: t('audit.at'), render: (r) => fmtDateTime(r.at) },
    { key: 'actor', label: t('audit.user'), render: (r) => `${r.actor ?? '—'}${r.actor_department ? ` · ${r.actor_department}` : ''}` },
    { key: 'action', label: t('audit.action'), className: 'mono' },
    { key: 'resource_id', label: t('audit.resource'), render: (r) => <span className="mono small">{r.resource_type ? `${r.resource_type}:` : ''}{r.resource_id ?? ''}</span> },
    { key: 'purpose', label: t('purpose.purpose'), render: (r) => `${r.purpose ?? ''}${r.case_ref ? ` (${r.case_ref})` : ''}` },
    { key: 'outcome', label: t('audit.outcome'), render: (r) => <span className={`tag ${r.outcome === 'ok' ? 'accepted' : 'rejected'}`}>{r.outcome}{r.status ? ` ${r.status}` : ''}</span> },
    { key: 'ip', label: 'IP', className: 'mono' },
  ],
  // exports of what was searched, and the chain's verification with its report above the table
  useExtras: ({ t, query }) => {
    const [verify, setVerify] = useState<Verification | null>(null);
    const exported = (fmt: 'csv' | 'xlsx') => () => void download(`/audit/records.${fmt}${qs(query)}`, `audit.${fmt}`).catch(toastError);
    return {
      toolbar: (
        <>
          <button className="btn small" onClick={exported('csv')}><Icon name="download" /> CSV</button>
          <button className="btn small" onClick={exported('xlsx')}><Icon name="download" /> Excel</button>
          <button className="btn small" onClick={() => api<Verification>('/audit/verify').then(setVerify).catch(toastError)} data-testid="audit-verify-run">{t('audit.verify')}</button>
        </>
      ),
      above: verify && (
        <div className={`card report ${verify.ok ? 'ok' : 'bad'}`} data-testid="audit-verify">
          <div className="card-title">{verify.ok ? `✓ ${t('audit.chainOk', { n: verify.records })}` : `✗ ${t('audit.chainBad', { n: verify.problems.length })}`}</div>
          {!verify.ok && <pre className="mono small">{JSON.stringify(verify.problems.slice(0, 20), null, 1)}</pre>}
        </div>
      ),
    };
  },
};
