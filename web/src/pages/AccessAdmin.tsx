// Administration of who may do what beyond the users (admin/resources/users.tsx): sharing
// grants, the approval inbox and the audit search.
import { useEffect, useState } from 'react';
import { api, download, qs } from '../api/client';
import { list, scopeText } from '../admin/scope';
import { FormDialog, ListError, Pager, Table, usePaged, type Field } from '../components/Data';
import { Icon } from '../components/Icon';
import { fmtDateTime, useT } from '../i18n';
import { can, useUser } from '../lib/session';
import { toast, toastError } from '../lib/toast';

// ---- sharing grants ------------------------------------------------------------------------
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


export function Grants() {
  const t = useT();
  const user = useUser();
  const [inactive, setInactive] = useState(false);
  const grants = usePaged<Grant>('/access/grants', { include_inactive: inactive || undefined });
  const [edit, setEdit] = useState(false);
  const manage = can(user, 'access.manage');
  const fields: Field[] = [
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
  ];
  return (
    <section>
      <div className="toolbar">
        <span className="muted small">{t('grant.hint')}</span>
        <label className="field inline">
          <input type="checkbox" checked={inactive} onChange={(e) => setInactive(e.target.checked)} />
          <span>{t('grant.showInactive')}</span>
        </label>
        <span className="grow" />
        {manage && <button className="btn primary" onClick={() => setEdit(true)}>＋ {t('grant.new')}</button>}
      </div>
      <ListError error={grants.error} what={t('admin.tab.grants')} />
      {!grants.error && (
        <Table<Grant>
          testid="grants-table"
          rows={grants.items}
          rowKey={(r) => r.id}
          cols={[
            { key: 'id', label: 'ID', className: 'num' },
            { key: 'to', label: t('grant.to'), render: (r) => r.department ?? (r.user_id !== null ? `${t('grant.user')} #${r.user_id}` : '—') },
            { key: 'what', label: t('grant.what'), render: (r) => [scopeText(t, r.filter), r.channel_count ? t('grant.nChannels', { n: r.channel_count }) : ''].filter(Boolean).join(' · ') || t('common.all') },
            { key: 'actions', label: t('grant.actions'), render: (r) => r.actions.map((a) => t(`action.${a}`)).join('、') },
            { key: 'valid_until', label: t('grant.until'), render: (r) => (r.valid_until ? fmtDateTime(r.valid_until) : t('grant.forever')) },
            { key: 'kind', label: t('grant.kind'), render: (r) => `${r.kind}${r.state && r.state !== 'active' ? ` · ${r.state}` : ''}` },
            { key: 'reason', label: t('grant.reason') },
            { key: 'created_by', label: t('grant.by'), render: (r) => `${r.created_by} · ${fmtDateTime(r.created_at)}` },
          ]}
          actions={
            manage
              ? (r) =>
                  r.state === undefined || r.state === 'active' ? (
                    <button
                      className="btn small danger"
                      onClick={async () => {
                        if (!window.confirm(t('grant.revokeConfirm', { id: r.id }))) return;
                        try {
                          await api(`/access/grants/${r.id}`, { method: 'DELETE' });
                          grants.reload();
                        } catch (e) {
                          toastError(e);
                        }
                      }}
                    >
                      {t('grant.revoke')}
                    </button>
                  ) : null
              : undefined
          }
        />
      )}
      {edit && (
        <FormDialog
          title={t('grant.new')}
          fields={fields}
          initial={{ a_live: true, a_playback: true }}
          onClose={() => setEdit(false)}
          onSubmit={async (v) => {
            const actions = [v.a_live && 'media.live', v.a_playback && 'media.playback', v.a_download && 'media.download', v.a_ptz && 'device.ptz'].filter(Boolean);
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
              actions,
              reason: v.reason ?? '',
              valid_until: v.valid_until ? new Date(String(v.valid_until)).toISOString() : undefined,
            };
            if (Object.values(filter).some((x) => x.length)) body.filter = filter;
            await api('/access/grants', { method: 'POST', body });
            toast(t('common.saved'), 'ok');
            grants.reload();
          }}
        />
      )}
    </section>
  );
}

// ---- approvals -----------------------------------------------------------------------------
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

export function Approvals() {
  const t = useT();
  const user = useUser();
  const approver = can(user, 'access.approve') || can(user, 'users.manage');
  const [box, setBox] = useState(approver ? 'todo' : 'mine');
  const items = usePaged<Approval>('/approvals', { box });
  async function decide(r: Approval, what: 'approve' | 'refuse' | 'withdraw') {
    const note = what === 'withdraw' ? '' : window.prompt(t(`approval.note.${what}`), '') ?? null;
    if (note === null) return;
    try {
      await api(`/approvals/${r.id}/${what}`, { method: 'POST', body: what === 'withdraw' ? undefined : { note } });
      toast(t(`approval.done.${what}`), 'ok');
      items.reload();
    } catch (e) {
      toastError(e);
    }
  }
  return (
    <section>
      <div className="toolbar">
        <span className="seg">
          {(approver ? ['todo', 'mine', 'decided', 'all'] : ['mine']).map((b) => (
            <button key={b} className={`btn small ${box === b ? 'on' : ''}`} onClick={() => setBox(b)}>
              {t(`approval.box.${b}`)}
            </button>
          ))}
        </span>
        <span className="muted small">{t('approval.hint')}</span>
      </div>
      <ListError error={items.error} what={t('admin.tab.approvals')} />
      {!items.error && (
        <>
          <Table<Approval>
            testid="approvals-table"
            rows={items.items}
            rowKey={(r) => r.id}
            cols={[
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
            ]}
            actions={(r) =>
              r.status === 'pending' ? (
                box === 'todo' ? (
                  <>
                    <button className="btn small primary" onClick={() => decide(r, 'approve')}>{t('approval.approve')}</button>
                    <button className="btn small danger" onClick={() => decide(r, 'refuse')}>{t('approval.reject')}</button>
                  </>
                ) : r.requester === user?.username ? (
                  <button className="btn small" onClick={() => decide(r, 'withdraw')}>{t('approval.withdraw')}</button>
                ) : null
              ) : null
            }
          />
          <Pager more={items.more} loading={items.loading} count={items.items.length} />
        </>
      )}
    </section>
  );
}

// ---- audit ---------------------------------------------------------------------------------
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

export function Audit() {
  const t = useT();
  const [f, setF] = useState({ actor: '', channel: '', department: '', action: '', outcome: '', since: '', until: '' });
  const [applied, setApplied] = useState(f);
  const [rows, setRows] = useState<AuditRow[]>([]);
  const [before, setBefore] = useState<number | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [verify, setVerify] = useState<{ ok: boolean; records: number; problems: unknown[]; seconds: number } | null>(null);
  const params = (a: typeof f) => ({
    actor: a.actor,
    channel: a.channel,
    department: a.department,
    action: a.action,
    outcome: a.outcome,
    since: a.since ? new Date(a.since).toISOString() : undefined,
    until: a.until ? new Date(a.until).toISOString() : undefined,
  });
  async function load(more: boolean) {
    setLoading(true);
    setErr(null);
    try {
      const r = await api<{ items: AuditRow[]; next_before: number | null }>(`/audit/records${qs({ ...params(applied), before: more ? before : undefined, limit: 100 })}`);
      setRows((old) => (more ? old.concat(r.items) : r.items));
      setBefore(r.next_before);
    } catch (e) {
      setErr(e);
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => {
    void load(false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [applied]);
  return (
    <section>
      <div className="toolbar">
        <input placeholder={t('audit.user')} value={f.actor} onChange={(e) => setF({ ...f, actor: e.target.value })} style={{ width: 120 }} />
        <input placeholder={t('audit.channel')} value={f.channel} onChange={(e) => setF({ ...f, channel: e.target.value })} style={{ width: 190 }} />
        <input placeholder={t('ch.department')} value={f.department} onChange={(e) => setF({ ...f, department: e.target.value })} style={{ width: 110 }} />
        <input placeholder={t('audit.actionHint')} value={f.action} onChange={(e) => setF({ ...f, action: e.target.value })} style={{ width: 130 }} />
        <select value={f.outcome} onChange={(e) => setF({ ...f, outcome: e.target.value })}>
          <option value="">{t('audit.anyOutcome')}</option>
          {['ok', 'refused', 'failed', 'error'].map((o) => (
            <option key={o} value={o}>{o}</option>
          ))}
        </select>
        <label className="field inline"><span>{t('audit.from')}</span><input type="datetime-local" value={f.since} onChange={(e) => setF({ ...f, since: e.target.value })} /></label>
        <label className="field inline"><span>{t('audit.to')}</span><input type="datetime-local" value={f.until} onChange={(e) => setF({ ...f, until: e.target.value })} /></label>
        <button className="btn primary" onClick={() => setApplied({ ...f })} data-testid="audit-search">{t('common.search')}</button>
        <span className="grow" />
        <button className="btn small" onClick={() => void download(`/audit/records.csv${qs(params(applied))}`, 'audit.csv').catch(toastError)}><Icon name="download" /> CSV</button>
        <button className="btn small" onClick={() => void download(`/audit/records.xlsx${qs(params(applied))}`, 'audit.xlsx').catch(toastError)}><Icon name="download" /> Excel</button>
        <button className="btn small" onClick={() => api<typeof verify>('/audit/verify').then(setVerify).catch(toastError)}>{t('audit.verify')}</button>
      </div>
      {verify && (
        <div className={`card report ${verify.ok ? 'ok' : 'bad'}`} data-testid="audit-verify">
          <div className="card-title">{verify.ok ? `✓ ${t('audit.chainOk', { n: verify.records })}` : `✗ ${t('audit.chainBad', { n: verify.problems.length })}`}</div>
          {!verify.ok && <pre className="mono small">{JSON.stringify(verify.problems.slice(0, 20), null, 1)}</pre>}
        </div>
      )}
      <ListError error={err} what={t('admin.tab.audit')} />
      {!err && (
        <>
          <Table<AuditRow>
            testid="audit-table"
            rows={rows}
            rowKey={(r) => r.seq}
            cols={[
              { key: 'seq', label: '#', className: 'num' },
              { key: 'at', label: t('audit.at'), render: (r) => fmtDateTime(r.at) },
              { key: 'actor', label: t('audit.user'), render: (r) => `${r.actor ?? '—'}${r.actor_department ? ` · ${r.actor_department}` : ''}` },
              { key: 'action', label: t('audit.action'), className: 'mono' },
              { key: 'resource_id', label: t('audit.resource'), render: (r) => <span className="mono small">{r.resource_type ? `${r.resource_type}:` : ''}{r.resource_id ?? ''}</span> },
              { key: 'purpose', label: t('purpose.purpose'), render: (r) => `${r.purpose ?? ''}${r.case_ref ? ` (${r.case_ref})` : ''}` },
              { key: 'outcome', label: t('audit.outcome'), render: (r) => <span className={`tag ${r.outcome === 'ok' ? 'accepted' : 'rejected'}`}>{r.outcome}{r.status ? ` ${r.status}` : ''}</span> },
              { key: 'ip', label: 'IP', className: 'mono' },
            ]}
          />
          <Pager more={before ? () => void load(true) : null} loading={loading} count={rows.length} />
        </>
      )}
    </section>
  );
}
