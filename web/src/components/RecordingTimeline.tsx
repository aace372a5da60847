import { useRef, type MouseEvent } from 'react';
import { fmtDateTime, fmtTime, useT } from '../i18n';

/** One stretch of video on the merged timeline: the platform's segment or the device's file. */
export interface TimelineItem {
  start: Date;
  end: Date;
  source: 'platform' | 'device';
  /** platform: local disk or the object store (older recordings); device: the device's record type. */
  tier?: string;
  type?: string;
  open?: boolean;
}

export interface Gap {
  start: Date;
  end: Date;
}

/** The answer of GET /channels/{id}/recordings, parsed. */
export interface Merged {
  items: TimelineItem[];
  gaps: Gap[];
  device: { state: string; reason?: string; recordings?: number };
}

export function parseMerged(r: unknown, now = Date.now()): Merged {
  const body = (r ?? {}) as { segments?: Record<string, unknown>[]; gaps?: Record<string, unknown>[]; device?: Merged['device'] };
  const items: TimelineItem[] = [];
  for (const x of body.segments ?? []) {
    const start = new Date(String(x.start));
    const end = x.end ? new Date(String(x.end)) : new Date(now); // an open segment: up to now
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) continue;
    items.push({ start, end, source: x.source === 'device' ? 'device' : 'platform', tier: x.tier as string | undefined, type: x.type as string | undefined, open: !!x.open });
  }
  const gaps: Gap[] = [];
  for (const g of body.gaps ?? []) {
    const start = new Date(String(g.start));
    const end = new Date(String(g.end));
    if (!Number.isNaN(start.getTime()) && !Number.isNaN(end.getTime())) gaps.push({ start, end });
  }
  items.sort((a, b) => a.start.getTime() - b.start.getTime());
  return { items, gaps, device: body.device ?? { state: 'unavailable' } };
}

interface Props {
  lo: number;
  hi: number;
  merged: Merged | null;
  playhead: number | null;
  now: number;
  onPick: (at: Date) => void;
}

/** Platform recordings above, the device's below, gaps hatched; a click picks a time. */
export function RecordingTimeline({ lo, hi, merged, playhead, now, onPick }: Props) {
  const t = useT();
  const bar = useRef<HTMLDivElement>(null);
  const span = hi - lo;
  const pos = (ms: number) => `${(((ms - lo) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${((Math.min(hi, b) - Math.max(lo, a)) / span) * 100}%`;
  const visible = (a: Date, b: Date) => b.getTime() > lo && a.getTime() < hi;

  const click = (e: MouseEvent<HTMLDivElement>) => {
    const rect = bar.current!.getBoundingClientRect();
    onPick(new Date(lo + ((e.clientX - rect.left) / rect.width) * span));
  };

  const ticks: number[] = [];
  const step = span > 12 * 3600000 ? 2 * 3600000 : span > 2 * 3600000 ? 30 * 60000 : 5 * 60000;
  for (let x = Math.ceil(lo / step) * step; x <= hi; x += step) ticks.push(x);

  return (
    <div className="timeline rec-timeline" ref={bar} onClick={click} title={t('playback.clickToPlay')} data-testid="rec-timeline">
      {ticks.map((x) => (
        <div key={x} className="tick" style={{ left: pos(x) }}>
          <span>{new Date(x).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })}</span>
        </div>
      ))}
      {merged?.gaps.map((g, i) =>
        visible(g.start, g.end) ? (
          <div key={`g${i}`} className="gap" data-testid="rec-gap" style={{ left: pos(Math.max(lo, g.start.getTime())), width: width(g.start.getTime(), g.end.getTime()) }} title={`${t('playback.gap')} ${fmtDateTime(g.start)} – ${fmtTime(g.end)}`} />
        ) : null,
      )}
      {merged?.items.map((r, i) =>
        visible(r.start, r.end) ? (
          <div
            key={i}
            className={`rec ${r.source}${r.tier === 'object' ? ' archived' : ''}`}
            data-testid={`rec-${r.source}`}
            data-start={r.start.toISOString()}
            style={{ left: pos(Math.max(lo, r.start.getTime())), width: width(r.start.getTime(), r.end.getTime()) }}
            title={`${t(r.source === 'platform' ? 'playback.platform' : 'playback.device')} ${fmtDateTime(r.start)} – ${fmtTime(r.end)}`}
          />
        ) : null,
      )}
      {playhead !== null && playhead >= lo && playhead <= hi && <div className="playhead" data-testid="playhead" style={{ left: pos(playhead) }} />}
      {now >= lo && now <= hi && <div className="nowline" style={{ left: pos(now) }} />}
    </div>
  );
}
