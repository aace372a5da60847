// Shapes of the platform's API (see /api/v1/docs).

export interface User {
  id: number;
  username: string;
  role: string;
  department: string | null;
  division_code: string | null;
  display_name?: string;
  actions?: string[];
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  total?: number | null;
}

export interface Division {
  code: string;
  name: string;
  level: string;
  parent_code: string | null;
}

export interface Unit {
  id: number;
  name: string;
  category: string | null;
  head_contact: string | null;
  address: string | null;
  department: string | null;
  division_code: string | null;
}

export interface PlatformRec {
  id: number;
  unit_id: number;
  segment: string;
  kind: string | null;
  signal: string | null;
  platform_maker: string | null;
  platform_model: string | null;
  platform_standard: boolean | null;
  camera_count: number;
  recorder_count: number;
  network: string | null;
  storage_mode: string | null;
  retention_days: number | null;
  gb_id: string | null;
  rtsp_url: string | null;
  faults: string | null;
  coverage: string | null;
  [k: string]: unknown;
}

export interface Device {
  id: string;
  name: string;
  type_code: string;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  platform_id: number | null;
  unit_id: number | null;
  admission: string;
  transport: string | null;
  remote_host: string | null;
  remote_port: number | null;
  online: boolean;
  registered_at: string | null;
  last_keepalive: string | null;
  channel_count: number;
  gb_version: string | null;
  /** platform: a lower platform (type 200, or it reports 215/216 groups) */
  kind?: 'device' | 'platform';
}

export interface Channel {
  id: string;
  name: string;
  kind: string;
  device_id: string | null;
  unit_id: number | null;
  department: string | null;
  division_code: string;
  parent_id: string | null;
  point_class: number | null;
  coverage: string | null;
  tier: string | null;
  ptz_type: number | null;
  longitude: number | null;
  latitude: number | null;
  address: string | null;
  key_site: boolean;
  retention_days_required?: number;
  status: string;
  networked: boolean;
  manufacturer?: string | null;
  model?: string | null;
  resolution?: string | null;
}

export interface Rate {
  count: number;
  total: number;
  rate: number | null;
}

export interface Statistics {
  division: string | null;
  department: string | null;
  points: number;
  by_class: Record<string, number>;
  by_coverage: Record<string, number>;
  by_tier: Record<string, number>;
  key_sites: number;
  geo_labelling: Rate;
  geo_labelling_class1: Rate;
  networking: Rate;
  online: Rate;
  standard_compliance: Rate;
  storage_compliance: Rate;
  children: { code: string; name: string | null; points: number; class1: number; geo_labelled: number; networked: number; online: number }[];
}

export interface ImportProblem {
  row: number | null;
  column: string | null;
  value: string | null;
  reason: string;
}

export interface ImportReport {
  file?: string;
  form?: string;
  ok: boolean;
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  new_units: string[];
  /** townships and villages ("code name") created from a channel list: not in the national list */
  new_divisions?: string[];
  problems: ImportProblem[];
  warnings: string[];
}

/** A channel as the map and the wall need it: small, so that 100,000 fit comfortably. */
export interface ChannelRef {
  id: string;
  name: string;
  status?: string;
  tier?: string | null;
  point_class?: number | null;
  ptz_type?: number | null;
}

/** The roles a user may be given: the platform's (access/policy.py ROLES) but 'system', which is
 *  for API clients; web/test/roles.test.mjs keeps the two lists the same. The user form reads
 *  GET /roles and falls back on this list. */
export const ROLES = ['administrator', 'operator', 'department_user', 'maintainer', 'supervisor', 'auditor', 'resident', 'grid_member', 'agency'] as const;
export const UNIT_CATEGORIES = ['government', 'enterprise', 'public_service', 'key_site', 'shop', 'residential'] as const;
export const TIERS = ['high', 'building', 'street'] as const;
export const STATUSES = ['ON', 'OFF', 'VLOST', 'DEFECT', 'UNKNOWN'] as const;
