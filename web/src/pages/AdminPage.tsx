import { Fragment, useState, type ReactNode } from 'react';
import { download, qs } from '../api/client';
import type { ImportReport } from '../api/types';
import { ImportResult, upload } from '../admin/ImportResult';
import { ResourceTable } from '../admin/ResourceTable';
import { approvals } from '../admin/resources/approvals';
import { audit } from '../admin/resources/audit';
import { channels } from '../admin/resources/channels';
import { codes } from '../admin/resources/codes';
import { devices } from '../admin/resources/devices';
import { grants } from '../admin/resources/grants';
import { platforms } from '../admin/resources/platforms';
import { teams } from '../admin/resources/teams';
import { units } from '../admin/resources/units';
import { uppers } from '../admin/resources/uppers';
import { users } from '../admin/resources/users';
import { useT } from '../i18n';
import { Link } from '../lib/router';
import { can, useUser } from '../lib/session';
import { toastError } from '../lib/toast';
import { Icon } from '../components/Icon';

/** The tabs, the action a user needs to see each (none: everyone) and what each shows. */
const TABS: { id: string; action: string | null; view: () => ReactNode }[] = [
  { id: 'units', action: 'registry.read', view: () => <ResourceTable res={units} /> },
  { id: 'platforms', action: 'registry.read', view: () => <ResourceTable res={platforms} /> },
  { id: 'devices', action: 'registry.read', view: () => <ResourceTable res={devices} /> },
  { id: 'channels', action: 'registry.read', view: () => <ResourceTable res={channels} /> },
  { id: 'survey', action: 'registry.manage', view: () => <Survey /> },
  { id: 'teams', action: 'tickets.manage', view: () => <ResourceTable res={teams} /> },
  { id: 'users', action: 'users.manage', view: () => <ResourceTable res={users} /> },
  { id: 'codes', action: 'residents.manage', view: () => <ResourceTable res={codes} /> },
  { id: 'grants', action: 'access.read', view: () => <ResourceTable res={grants} /> },
  { id: 'approvals', action: null, view: () => <ResourceTable res={approvals} /> },
  { id: 'audit', action: 'audit.read', view: () => <ResourceTable res={audit} /> },
  { id: 'uppers', action: 'signalling.manage', view: () => <ResourceTable res={uppers} /> },
];

export default function AdminPage({ tab }: { tab?: string }) {
  const t = useT();
  const user = useUser();
  const tabs = TABS.filter((x) => x.action === null || can(user, x.action));
  const cur = tabs.find((x) => x.id === tab) ?? tabs[0];
  return (
    <div className="page admin">
      <div className="page-head">
        <h2>{t('nav.admin')}</h2>
      </div>
      <nav className="tabs">
        {tabs.map((x) => (
          <Link key={x.id} to={`/app/admin/${x.id}`} className={`tab ${cur?.id === x.id ? 'on' : ''}`}>
            {t(`admin.tab.${x.id}`)}
          </Link>
        ))}
      </nav>
      <div className="tab-body">
        {/* keyed by tab: a tab opened starts afresh, with its own filters and list */}
        {cur && <Fragment key={cur.id}>{cur.view()}</Fragment>}
        {!cur && <p className="muted">{t('admin.nothing')}</p>}
      </div>
    </div>
  );
}

// ---- survey import / export ----------------------------------------------------------------
function Survey() {
  const t = useT();
  const [file, setFile] = useState<File | null>(null);
  const [department, setDepartment] = useState('');
  const [dry, setDry] = useState(true);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [kind, setKind] = useState<'survey' | 'channels' | 'grids'>('survey');
  async function go() {
    if (!file) return;
    setBusy(true);
    setReport(null);
    try {
      setReport(await upload(`/${kind}/import`, file, kind === 'survey' ? { department, dry_run: dry } : { dry_run: dry }));
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
            <select value={kind} onChange={(e) => setKind(e.target.value as 'survey' | 'channels' | 'grids')} data-testid="survey-kind">
              <option value="survey">{t('survey.kind.survey')}</option>
              <option value="channels">{t('survey.kind.channels')}</option>
              <option value="grids">{t('survey.kind.grids')}</option>
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
