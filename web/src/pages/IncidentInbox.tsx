// A department's inbox (部门待办): its own dispatches still to acknowledge or handle, and those
// fed back awaiting the centre's review, the nearest deadline first, overdue ones marked.
// A click opens the case (its acknowledge / feedback / return buttons are in the case).
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import { ErrorBox } from '../components/Common';
import { fmtDateTime, useT } from '../i18n';
import { MESSAGES } from '../i18n/messages';

Object.assign(MESSAGES, {
  'inbox.title': ['本部门待办 · {dept}', 'Inbox · {dept}'],
  'inbox.none': ['没有待办的事件', 'Nothing to do'],
  'inbox.due': ['时限', 'Due'],
  'inbox.counts': ['待签收 {a} · 处置中 {h} · 超时 {o}', 'To acknowledge {a} · handling {h} · overdue {o}'],
});

interface Item {
  id: number;
  category: string;
  description: string;
  priority: string;
  flagged: boolean;
  dispatch: { id: number; status: string; deadline: string; overdue: boolean };
}

export function IncidentInbox({ department, version, selected, onOpen }: { department: string; version: number; selected: number | null; onOpen: (id: number) => void }) {
  const t = useT();
  const [items, setItems] = useState<Item[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    api<{ items: Item[] }>('/incidents/inbox').then((r) => { setItems(r.items); setErr(null); }, setErr);
  }, [version]);
  const n = (f: (x: Item) => boolean) => (items ?? []).filter(f).length;
  return (
    <div className="card" data-testid="inc-inbox">
      <div className="card-title row gap">
        {t('inbox.title', { dept: department })}
        <span className="grow" />
        {items && (
          <span className="muted small">
            {t('inbox.counts', { a: n((x) => x.dispatch.status === 'dispatched'), h: n((x) => x.dispatch.status === 'handling'), o: n((x) => x.dispatch.overdue) })}
          </span>
        )}
      </div>
      <ErrorBox error={err} />
      {items && items.length === 0 && <div className="muted">{t('inbox.none')}</div>}
      {items && items.length > 0 && (
        <table className="table">
          <tbody>
            {items.map((x) => (
              <tr key={x.dispatch.id} className={selected === x.id ? 'selected' : ''} onClick={() => onOpen(x.id)} data-testid={`inbox-row-${x.id}`}>
                <td className="mono">#{x.id}</td>
                <td>{x.category}</td>
                <td>{t(`inc.priority.${x.priority}`)}</td>
                <td data-testid="inbox-status">{t(`inc.dstatus.${x.dispatch.status}`)}</td>
                <td>
                  {t('inbox.due')} {fmtDateTime(x.dispatch.deadline)}
                  {x.dispatch.overdue && <span className="badge warn"> {t('inc.overdue')}</span>}
                </td>
                <td>{x.flagged ? <span className="badge warn">{t('inc.flag')}</span> : null}</td>
                <td className="muted">{x.description.slice(0, 40)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
