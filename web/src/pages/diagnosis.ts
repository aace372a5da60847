// What the console reads of picture diagnosis (GET /channels/{id}/diagnoses, /diagnosis/faults),
// what it asks (diagnose now, take the reference), and its words.
import { api, raw } from '../api/client';
import { MESSAGES } from '../i18n/messages';

export interface DiagnosisResult {
  id: number;
  channel_id: string;
  at: string;
  picture: boolean;
  faults: string[];
  confirmed: string[];
  scores: Record<string, number>;
  profile: string;
  frames: number;
  reason: string | null;
  home_preset: boolean | null;
  by: string;
}
export interface ChannelDiagnoses {
  channel_id: string;
  items: DiagnosisResult[];
  reference_at: string | null;
  reference_by: string | null;
}
export interface CityFaults {
  inspected: number;
  faulty: number;
  by_class: Record<string, Record<string, number>>;
  by_division: Record<string, Record<string, number>>;
  channels: { channel_id: string; name: string; point_class: number | null; division_code: string | null; confirmed: string[]; at: string }[];
}

export const FAULT_CODES = ['signal_loss', 'blur', 'too_dark', 'too_bright', 'color_cast', 'noise', 'stripes', 'frozen', 'occlusion', 'scene_changed'];

export function loadDiagnoses(id: string, limit = 10): Promise<ChannelDiagnoses> {
  return api<ChannelDiagnoses>(`/channels/${encodeURIComponent(id)}/diagnoses?limit=${limit}`);
}

export function loadCityFaults(): Promise<CityFaults> {
  return api<CityFaults>('/diagnosis/faults');
}

export function diagnoseNow(id: string): Promise<DiagnosisResult> {
  return api<DiagnosisResult>(`/channels/${encodeURIComponent(id)}/diagnose`, { method: 'POST', body: {} });
}

export function takeReference(id: string): Promise<unknown> {
  return api(`/channels/${encodeURIComponent(id)}/diagnosis/reference`, { method: 'POST', body: {} });
}

/** A picture the API serves with the bearer token, as an object URL (null when there is none). */
export async function pictureUrl(id: string, which: 'snapshot' | 'reference'): Promise<string | null> {
  try {
    const res = await raw(`/channels/${encodeURIComponent(id)}/diagnosis/${which}.jpg`);
    return URL.createObjectURL(await res.blob());
  } catch {
    return null;
  }
}

Object.assign(MESSAGES, {
  'diag.title': ['画面诊断', 'Picture diagnosis'],
  'diag.never': ['尚未诊断', 'Not inspected yet'],
  'diag.ok': ['画面正常', 'Picture good'],
  'diag.noPicture': ['未取到画面', 'No picture'],
  'diag.now': ['立即诊断', 'Diagnose now'],
  'diag.reference': ['设为基准图', 'Take as reference'],
  'diag.referenceAt': ['基准图 {at}', 'Reference {at}'],
  'diag.noReference': ['未设基准图', 'No reference picture'],
  'diag.at': ['诊断于 {at}', 'Inspected {at}'],
  'diag.confirmed': ['已确认', 'confirmed'],
  'diag.suspected': ['待复核', 'to confirm'],
  'diag.running': ['诊断中…', 'Inspecting…'],
  'diag.awayFromHome': ['未回预置位', 'Not at its home preset'],
  'diag.cityTitle': ['画面故障（视频质量诊断）', 'Picture faults (quality diagnosis)'],
  'diag.inspected': ['已诊断 {n} 路，故障 {m} 路', '{n} inspected, {m} faulty'],
  'diag.byClass': ['按点位类别', 'By point class'],
  'diag.byCounty': ['按区县', 'By county'],
  'diag.unclassified': ['未分类', 'Unclassified'],
  'fault.signal_loss': ['信号丢失', 'Signal loss'],
  'fault.blur': ['清晰度异常', 'Blur'],
  'fault.too_dark': ['过暗', 'Too dark'],
  'fault.too_bright': ['过亮', 'Too bright'],
  'fault.color_cast': ['偏色', 'Colour cast'],
  'fault.noise': ['噪声', 'Noise'],
  'fault.stripes': ['条纹干扰', 'Stripes'],
  'fault.frozen': ['画面冻结', 'Frozen'],
  'fault.occlusion': ['遮挡', 'Occlusion'],
  'fault.scene_changed': ['场景变换', 'Scene changed'],
});
