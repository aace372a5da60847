import { useCallback, useEffect, useState } from 'react';
import { Empty, ErrorBox } from '../components/Common';
import { fmtDateTime, useT } from '../i18n';
import { errorText, toast } from '../lib/toast';
import { loadTickets, step, type Ticket } from './health';

/** 我的工单: a maintenance team's tickets on a phone — acknowledge, repair, resolve with a photo. */
export default function MyTicketsPage() {
  const t = useT();
  const [items, setItems] = useState<Ticket[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const reload = useCallback(() => loadTickets({ status: 'open,acknowledged,repairing', limit: 200 }).then(setItems, setErr), []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return (
    <div className="page my-tickets" data-testid="my-tickets">
      <h2>{t('my.title')}</h2>
      <ErrorBox error={err} />
      {items && items.length === 0 && <Empty>{t('my.none')}</Empty>}
      {(items ?? []).map((x) => <TicketCard key={x.id} ticket={x} onDone={() => void reload()} />)}
    </div>
  );
}

function TicketCard({ ticket: x, onDone }: { ticket: Ticket; onDone: () => void }) {
  const t = useT();
  const [note, setNote] = useState('');
  const [photo, setPhoto] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const go = async (name: string) => {
    setBusy(true);
    try {
      await step(x.id, name, name === 'resolve' ? note : undefined, name === 'resolve' ? photo : null);
      toast(`#${x.id} ✓`, 'ok');
      onDone();
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className={`card ticket ${x.overdue ? 'overdue' : ''}`} data-testid={`my-ticket-${x.id}`}>
      <div className="card-title">
        #{x.id} <span className="mono">{x.channel_id}</span>
        <span className="grow" />
        <span className="badge" data-testid="my-ticket-status">{t(`ops.status.${x.status}`)}</span>
        {x.overdue && <span className="badge warn">{t('ops.overdue')}</span>}
      </div>
      <div className="muted">{t(`ops.fault.${x.kind}`)}{x.detail ? ` · ${x.detail}` : ''}</div>
      <div className="muted">{t('my.since')} {fmtDateTime(x.fault_since)} · {t('my.due')} {fmtDateTime(x.repair_due)}</div>
      <div className="my-actions">
        {x.status === 'open' && <button className="btn block" disabled={busy} onClick={() => void go('acknowledge')} data-testid="my-ack">{t('my.acknowledge')}</button>}
        {(x.status === 'open' || x.status === 'acknowledged') && <button className="btn block" disabled={busy} onClick={() => void go('repair')}>{t('my.repair')}</button>}
        <textarea placeholder={t('my.notePlaceholder')} value={note} onChange={(e) => setNote(e.target.value)} data-testid="my-note" />
        <label className="btn block">
          {t('my.photo')} {photo ? `· ${photo.name}` : ''}
          <input type="file" accept="image/jpeg,image/png" capture="environment" hidden onChange={(e) => setPhoto(e.target.files?.[0] ?? null)} data-testid="my-photo" />
        </label>
        <button className="btn block primary" disabled={busy || !note.trim()} onClick={() => void go('resolve')} data-testid="my-resolve">{t('my.resolve')}</button>
      </div>
    </div>
  );
}
