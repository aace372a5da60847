// The approval inbox: requests to act on cameras (e.g. download footage) that wait for an
// approver, and one's own requests. Made where the need arises (the purpose dialog), decided here.
import { api } from '../../api/client';
import { fmtDateTime } from '../../i18n';
import { useUser } from '../../lib/session';
import { toast, toastError } from '../../lib/toast';
import type { Resource } from '../resource';

interface Approval {
  id: number;
  requester: string;
  department: string | null;
  actions: string[];
  channel_ids: string[];
  purpose: string;
  case: string | null;
  minutes: number | null;
  status: string;
  created_at: string;
  expires_at: string | null;
  decided_at: string | null;
  decided_by: string | null;
  decision_note: string | null;
}

type Decision = 'approve' | 'refuse' | 'withdraw';

export const approvals: Resource<Approval> = {
  id: 'approvals',
  path: '/approvals',
  key: (r) => r.id,
  // the endpoint answers one page, of up to 200 by default
  paging: { limit: 200 },
  // approvers start with what waits for them; everyone else sees only their own requests
  filters: (t, { can }) => {
    const approver = can('access.approve') || can('users.manage');
    return [
      {
        param: 'box',
        kind: 'segmented',
        options: (approver ? ['todo', 'mine', 'decided', 'all'] : ['mine']).map((b) => ({ value: b, label: t(`approval.box.${b}`) })),
        initial: approver ? 'todo' : 'mine',
        testid: 'approvals-box',
      },
    ];
  },
  columns: (t) => [
    { key: 'id', label: 'ID', className: 'num' },
    { key: 'requester', label: t('approval.requester'), render: (r) => `${r.requester}${r.department ? ` · ${r.department}` : ''}` },
    { key: 'actions', label: t('grant.actions'), render: (r) => r.actions.map((a) => t(`action.${a}`)).join('、') },
    { key: 'channel_ids', label: t('audit.channel'), render: (r) => <span className="mono small">{r.channel_ids.slice(0, 3).join(' ')}{r.channel_ids.length > 3 ? ` +${r.channel_ids.length - 3}` : ''}</span> },
    { key: 'purpose', label: t('purpose.purpose') },
    { key: 'case', label: t('purpose.case') },
    { key: 'minutes', label: t('approval.minutes'), className: 'num' },
    { key: 'status', label: t('ch.status'), render: (r) => <span className={`tag ${r.status}`}>{t(`approval.status.${r.status}`)}</span> },
    { key: 'created_at', label: t('audit.at'), render: (r) => fmtDateTime(r.created_at) },
    { key: 'decided_by', label: t('approval.decidedBy'), render: (r) => (r.decided_by ? `${r.decided_by} · ${fmtDateTime(r.decided_at)}${r.decision_note ? ` · ${r.decision_note}` : ''}` : '—') },
  ],
  // a pending request is decided from the to-do box, or withdrawn by whoever asked
  useExtras: ({ t, list, values }) => {
    const user = useUser();
    async function decide(r: Approval, what: Decision) {
      const note = what === 'withdraw' ? '' : (window.prompt(t(`approval.note.${what}`), '') ?? null);
      if (note === null) return;
      try {
        await api(`/approvals/${r.id}/${what}`, { method: 'POST', body: what === 'withdraw' ? undefined : { note } });
        toast(t(`approval.done.${what}`), 'ok');
        list.reload();
      } catch (e) {
        toastError(e);
      }
    }
    return {
      lead: <span className="muted small">{t('approval.hint')}</span>,
      row: (r) =>
        r.status !== 'pending' ? null : values.box === 'todo' ? (
          <>
            <button className="btn small primary" onClick={() => decide(r, 'approve')} data-testid="approval-approve">{t('approval.approve')}</button>
            <button className="btn small danger" onClick={() => decide(r, 'refuse')} data-testid="approval-refuse">{t('approval.reject')}</button>
          </>
        ) : r.requester === user?.username ? (
          <button className="btn small" onClick={() => decide(r, 'withdraw')} data-testid="approval-withdraw">{t('approval.withdraw')}</button>
        ) : null,
    };
  },
};
