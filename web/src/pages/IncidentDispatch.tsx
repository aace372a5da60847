// 分流: the centre dispatches a case to one or more departments, each with its own deadline
// (blank: the platform's default for the case's priority). The departments the platform knows
// are offered; any other name may be typed.
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import { ErrorBox, Modal } from '../components/Common';
import { useT } from '../i18n';
import { MESSAGES } from '../i18n/messages';
import { toast } from '../lib/toast';

Object.assign(MESSAGES, {
  'dispatch.title': ['分流 · 事件 #{id}', 'Dispatch · case #{id}'],
  'dispatch.department': ['承办部门', 'Department'],
  'dispatch.deadline': ['办结时限', 'Deadline'],
  'dispatch.byPriority': ['留空按优先级（{p}）默认时限', 'blank: the default for its priority ({p})'],
  'dispatch.add': ['＋ 增加部门', '＋ Another department'],
  'dispatch.remove': ['移除', 'Remove'],
  'dispatch.note': ['分流意见', 'Instructions'],
  'dispatch.submit': ['分流', 'Dispatch'],
  'dispatch.done': ['已分流到 {names}', 'Dispatched to {names}'],
  'dispatch.hours': ['{n} 小时', '{n} h'],
  'dispatch.days': ['{n} 天', '{n} d'],
  'dispatch.twice': ['同一部门只能出现一次', 'Name each department once'],
  'dispatch.past': ['时限须晚于现在', 'A deadline is in the future'],
});

/** Quick deadlines, in hours from now. */
const PRESETS = [2, 24, 72];

interface Row {
  department: string;
  /** datetime-local value (local time), or '' for the default */
  deadline: string;
}

function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function DispatchDialog({ id, priority, onClose, onDone }: { id: number; priority: string; onClose: () => void; onDone: () => void }) {
  const t = useT();
  const [rows, setRows] = useState<Row[]>([{ department: '', deadline: '' }]);
  const [note, setNote] = useState('');
  const [known, setKnown] = useState<string[]>([]);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api<{ items: string[] }>('/incidents/departments').then((r) => setKnown(r.items), () => setKnown([]));
  }, []);
  const set = (i: number, patch: Partial<Row>) => setRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const names = rows.map((r) => r.department.trim());
  const ready = names.every(Boolean) && new Set(names).size === names.length;

  async function submit() {
    setErr(null);
    if (new Set(names).size !== names.length) return setErr(new Error(t('dispatch.twice')));
    const departments = rows.map((r) => ({ department: r.department.trim(), deadline: r.deadline ? new Date(r.deadline).toISOString() : null }));
    if (departments.some((d) => d.deadline && new Date(d.deadline).getTime() <= Date.now())) return setErr(new Error(t('dispatch.past')));
    setBusy(true);
    try {
      await api(`/incidents/${id}/dispatch`, { method: 'POST', body: { departments, note } });
      toast(t('dispatch.done', { names: names.join('、') }), 'ok');
      onDone();
      onClose();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      title={t('dispatch.title', { id })}
      wide
      onClose={onClose}
      footer={
        <>
          <button className="btn" onClick={onClose}>{t('common.cancel')}</button>
          <button className="btn primary" disabled={busy || !ready} onClick={() => void submit()} data-testid="dispatch-submit">{t('dispatch.submit')}</button>
        </>
      }
    >
      <datalist id="dispatch-departments">
        {known.map((d) => <option key={d} value={d} />)}
      </datalist>
      <table className="table" data-testid="dispatch-rows">
        <thead>
          <tr><th>{t('dispatch.department')}</th><th>{t('dispatch.deadline')}</th><th /></tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td><input list="dispatch-departments" value={r.department} onChange={(e) => set(i, { department: e.target.value })} data-testid={`dispatch-dept-${i}`} /></td>
              <td>
                <div className="row gap wrap">
                  <input type="datetime-local" value={r.deadline} onChange={(e) => set(i, { deadline: e.target.value })} data-testid={`dispatch-deadline-${i}`} />
                  {PRESETS.map((h) => (
                    <button key={h} className="btn small" onClick={() => set(i, { deadline: localInput(new Date(Date.now() + h * 3600_000)) })}>
                      {h % 24 === 0 ? t('dispatch.days', { n: h / 24 }) : t('dispatch.hours', { n: h })}
                    </button>
                  ))}
                </div>
                {!r.deadline && <div className="muted small">{t('dispatch.byPriority', { p: t(`inc.priority.${priority}`) })}</div>}
              </td>
              <td>{rows.length > 1 && <button className="btn small" onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}>{t('dispatch.remove')}</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <button className="btn small" onClick={() => setRows((rs) => [...rs, { department: '', deadline: '' }])} data-testid="dispatch-add">{t('dispatch.add')}</button>
      <label className="field">
        <span>{t('dispatch.note')}</span>
        <textarea value={note} onChange={(e) => setNote(e.target.value)} rows={2} data-testid="dispatch-note" />
      </label>
      <ErrorBox error={err} />
    </Modal>
  );
}
