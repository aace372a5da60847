import type { T } from '../i18n';

/** A list typed as words separated by spaces, commas or semicolons. */
export const list = (v: unknown): string[] =>
  String(v ?? '')
    .split(/[\s,，;；]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** A scope (or a grant's filter) in a few words. */
export function scopeText(t: T, s: Record<string, unknown> | undefined): string {
  if (!s) return '';
  const parts: string[] = [];
  const pc = s.point_classes as number[] | undefined;
  if (pc?.length) parts.push(pc.map((c) => t(`class.${c}`)).join('/'));
  const tiers = s.tiers as string[] | undefined;
  if (tiers?.length) parts.push(tiers.map((x) => t(`tier.${x}`)).join('/'));
  const cov = s.coverages as string[] | undefined;
  if (cov?.length) parts.push(cov.join('/'));
  const groups = s.groups as string[] | undefined;
  if (groups?.length) parts.push(`${t('user.groups')} ${groups.join(',')}`);
  if (s.key_site === true) parts.push(t('ch.keySite'));
  const divs = s.divisions as string[] | undefined;
  if (divs?.length) parts.push(divs.join(','));
  const deps = s.departments as string[] | undefined;
  if (deps?.length) parts.push(deps.join(','));
  return parts.join(' · ');
}
