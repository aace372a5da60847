import { ApiError, raw } from '../api/client';
import type { ImportReport } from '../api/types';
import { useT } from '../i18n';
import { errorText } from '../lib/toast';

/** Uploads a file to an import endpoint and returns its report (a 422 report too). */
export async function upload(path: string, file: File, fields: Record<string, string | boolean>): Promise<ImportReport> {
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

/** The import report in place: counts, then every problem as a row of a table. */
export function ImportResult({ report, dry, onClose }: { report: ImportReport; dry?: boolean; onClose: () => void }) {
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
        {(report.new_divisions?.length ?? 0) > 0 && (
          <span title={report.new_divisions?.join('\n')} data-testid="import-new-divisions">
            {t('survey.newDivisions')}: <b>{report.new_divisions?.length}</b>
          </span>
        )}
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
