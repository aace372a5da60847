// What the operations and my-tickets pages read (GET /health/*, /tickets, /reports), and their words.
import { api, qs } from '../api/client';
import { MESSAGES } from '../i18n/messages';

export interface Rates {
  points: number;
  availability: number | null;
  intact: number | null;
  picture_rate: number | null;
  unknown_share: number | null;
}
export interface RateGroup extends Rates {
  key: string | number | null;
}
export interface Availability {
  from: string;
  to: string;
  total: Rates;
  groups?: RateGroup[];
  targets: Record<string, number>;
  note?: string;
}
export interface Ticket {
  id: number;
  channel_id: string;
  team_id: number | null;
  status: string;
  kind: string;
  detail: string | null;
  point_class: number | null;
  opened_at: string;
  fault_since: string;
  ack_due: string;
  repair_due: string;
  overdue: boolean;
  repeat: boolean;
  reopened: number;
  note: string | null;
  photo: boolean;
}
export interface Interval {
  state: 'online' | 'fault' | 'offline' | 'unknown';
  detail: string | null;
  start: string;
  end: string;
}
export interface Timeline {
  channel_id: string;
  from: string;
  to: string;
  intervals: Interval[];
  tickets: Ticket[];
}
export interface ReportRow {
  id: number;
  kind: string;
  from: string;
  to: string;
  format: string;
  created_at: string;
  created_by: string;
}

export const STATUSES = ['open', 'acknowledged', 'repairing', 'resolved'];

export const loadRates = (from: string, to: string, group = 'class') =>
  api<Availability>(`/health/availability${qs({ from, to, group })}`);
export const loadTickets = (params: Record<string, string | number | boolean | undefined>) =>
  api<{ items: Ticket[] }>(`/tickets${qs(params)}`).then((r) => r.items);
export const loadTimeline = (id: string, days = 30) => api<Timeline>(`/channels/${id}/timeline${qs({ days })}`);

/** A step on a ticket; resolve sends a note and, if given, a photo. */
export async function step(id: number, name: string, note?: string, photo?: File | null): Promise<Ticket> {
  if (name === 'resolve') {
    const f = new FormData();
    f.set('note', note ?? '');
    if (photo) f.set('photo', photo);
    return api<Ticket>(`/tickets/${id}/resolve`, { method: 'POST', body: f });
  }
  return api<Ticket>(`/tickets/${id}/${name}`, { method: 'POST', body: note ? { note } : {} });
}

/** The city's date ``daysAgo`` days before ``now`` (YYYY-MM-DD): the platform's rates and reports
 * count the city's days (health.utc_offset_hours, default 8), not the browser's time zone's. */
export function cityDay(daysAgo: number, offsetHours = 8, now = Date.now()): string {
  return new Date(now + offsetHours * 3600000 - daysAgo * 86400000).toISOString().slice(0, 10);
}

Object.assign(MESSAGES, {
  'ops.title': ['运维看板', 'Operations'],
  'ops.range': ['统计区间', 'Range'],
  'ops.byClass': ['分类在线率与完好率（对照目标）', 'Rates by point class against targets'],
  'ops.class': ['{n}类点位', 'Class {n} points'],
  'ops.availability': ['在线率', 'Availability'],
  'ops.intact': ['完好率', 'Intact'],
  'ops.picture': ['出图率', 'Picture rate'],
  'ops.target': ['目标 {v}', 'target {v}'],
  'ops.points': ['{n} 个点位', '{n} points'],
  'ops.noData': ['本期无数据', 'No data for this range'],
  'ops.board': ['工单看板', 'Ticket board'],
  'ops.status.open': ['待响应', 'Open'],
  'ops.status.acknowledged': ['已响应', 'Acknowledged'],
  'ops.status.repairing': ['维修中', 'In repair'],
  'ops.status.resolved': ['待核验', 'Resolved'],
  'ops.status.verified': ['已核验', 'Verified'],
  'ops.status.closed': ['已关闭', 'Closed'],
  'ops.overdue': ['超时', 'Overdue'],
  'ops.repeat': ['重复故障', 'Repeat fault'],
  'ops.timeline': ['点位近30天', "Point's last 30 days"],
  'ops.pickPoint': ['点选工单或重复故障点位查看时间线', 'Pick a ticket or a repeat-fault point to see its timeline'],
  'ops.repeatList': ['重复故障点位', 'Repeat-fault points'],
  'ops.tickets': ['{n} 张工单', '{n} tickets'],
  'ops.reports': ['报表归档', 'Report archive'],
  'ops.generate': ['生成', 'Generate'],
  'ops.kind.daily': ['日统计', 'Daily'],
  'ops.kind.weekly': ['周通报', 'Weekly'],
  'ops.kind.monthly': ['月分析', 'Monthly'],
  'ops.state.online': ['在线', 'Online'],
  'ops.state.fault': ['故障', 'Fault'],
  'ops.state.offline': ['离线', 'Offline'],
  'ops.state.unknown': ['未知', 'Unknown'],
  'ops.close': ['关闭', 'Close'],
  'ops.fault.offline': ['离线', 'Offline'],
  'ops.fault.fault': ['图像故障', 'Picture fault'],
  'ops.fault.manual': ['人工报修', 'Reported'],
  'ops.note': ['说明', 'Note'],
  'ops.openByHand': ['人工报修', 'Open a ticket'],
  'ops.openChannel': ['点位编码', 'Channel ID'],
  'ops.openNote': ['故障描述（如镜头脏污）', 'What is wrong (a dirty lens…)'],
  'ops.opened': ['已开工单 #{n}', 'Ticket #{n} opened'],
  'my.title': ['我的工单', 'My tickets'],
  'my.none': ['暂无待办工单', 'No tickets to work'],
  'my.acknowledge': ['响应', 'Acknowledge'],
  'my.repair': ['开始维修', 'Start repair'],
  'my.resolve': ['修复完成', 'Resolved'],
  'my.photo': ['现场照片', 'Photo'],
  'my.notePlaceholder': ['处理说明（必填）', 'What was done (required)'],
  'my.due': ['修复时限', 'Repair by'],
  'my.since': ['故障开始', 'Fault since'],
} satisfies Record<string, [string, string]>);
