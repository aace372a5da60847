// Alarms from the devices (报警): the duty operator hears of each one in a toast, sees the latest
// under the bell in the top bar, opens the camera with a click, and takes an alarm (确认) so the
// other operators see who handles it. The bell counts the alarms nobody has taken yet. Handling
// an alarm as an incident (dispatch, outcome) is not built yet.

import { useEffect, useRef, useState } from 'react';
import { api } from '../api/client';
import { fmtDateTime, useT } from '../i18n';
import { pointsStore, type Pt } from '../lib/points';
import { usePolling } from '../lib/poll';
import { navigate } from '../lib/router';
import { errorText, toast } from '../lib/toast';

export interface AlarmEvent {
  id: number;
  at: string;
  kind: string;
  subject: string; // the channel (or device) that raised it
  data: { description?: string | null; priority?: number | null; method?: number | null; device?: string } | null;
  ack?: { by: string; at: string; note: string } | null;
}

let names: { points: Pt[]; map: Map<string, string> } | null = null;

/** A camera's name when the map has loaded it, else its ID. */
function nameOf(id: string): string {
  const pts = pointsStore.get().points;
  if (!names || names.points !== pts) names = { points: pts, map: new Map(pts.map((p) => [p.id, p.name])) };
  return names.map.get(id) ?? id;
}

export function AlarmBell() {
  const t = useT();
  const [items, setItems] = useState<AlarmEvent[]>([]);
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);

  const describe = (a: AlarmEvent) => {
    const d = a.data ?? {};
    const what = d.description || t(`alarm.method.${d.method ?? 7}`);
    return `${nameOf(a.subject)} · ${what}`;
  };

  const newest = useRef(-1); // unknown until the first answer: what was there before is not announced
  const refresh = usePolling(async (alive) => {
    const r = await api<{ items: AlarmEvent[] }>('/events?kind=alarm&limit=30');
    if (!alive()) return;
    setItems(r.items);
    if (newest.current >= 0) {
      for (const a of r.items.filter((x) => x.id > newest.current).slice(0, 3).reverse()) {
        toast(t('alarm.toast', { what: describe(a), p: a.data?.priority ?? '-' }), 'warn', 10000);
      }
    }
    newest.current = Math.max(newest.current, r.items[0]?.id ?? 0);
  }, 10000);

  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => box.current && !box.current.contains(e.target as Node) && setOpen(false);
    window.addEventListener('mousedown', close);
    return () => window.removeEventListener('mousedown', close);
  }, [open]);

  const take = async (a: AlarmEvent) => {
    try {
      await api(`/events/${a.id}/ack`, { method: 'POST', body: {} });
    } catch (e) {
      toast(errorText(e), 'error');
    }
    await refresh();
  };
  const unseen = items.filter((a) => !a.ack).length;

  return (
    <div className="alarm-bell" ref={box}>
      <button className={`btn small ${unseen ? 'warn' : 'ghost'}`} onClick={() => setOpen(!open)} title={t('alarm.title')} data-testid="alarm-bell">
        🔔 {unseen > 0 && <span className="count" data-testid="alarm-count">{unseen}</span>}
      </button>
      {open && (
        <div className="alarm-panel" data-testid="alarm-panel">
          <div className="row gap">
            <b>{t('alarm.title')}</b>
            <span className="grow" />
            <span className="muted small">{t('alarm.open', { n: unseen })}</span>
          </div>
          {items.length === 0 && <p className="muted small">{t('alarm.none')}</p>}
          {items.map((a) => (
            <div key={a.id} className={`alarm-item ${a.ack ? '' : 'unseen'}`} data-testid="alarm-item">
              <button
                className="alarm-open"
                onClick={() => {
                  setOpen(false);
                  navigate(`/app/channel/${a.subject}`);
                }}
              >
                <b>{describe(a)}</b>
                <div className="muted small">
                  {fmtDateTime(a.at)} · {t('alarm.priority', { p: a.data?.priority ?? '-' })}
                </div>
              </button>
              {a.ack ? (
                <span className="muted small" data-testid="alarm-taken">{t('alarm.taken', { by: a.ack.by, at: fmtDateTime(a.ack.at) })}</span>
              ) : (
                <button className="btn small warn" onClick={() => void take(a)} data-testid="alarm-take">{t('alarm.take')}</button>
              )}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
