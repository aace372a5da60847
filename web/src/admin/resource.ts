import type { ReactNode } from 'react';
import type { Col, Field, Paging, usePaged } from '../components/Data';
import type { T } from '../i18n';

/** A filter above a resource's table: one query parameter of its list endpoint. */
export interface Filter {
  param: string;
  /** search, text: typed; select: a drop-down with an empty `all` first; checkbox: sends `true`
   *  when ticked, nothing otherwise; datetime: a local date and time, sent as ISO 8601;
   *  segmented: one of `options` as a row of buttons, never empty */
  kind: 'search' | 'text' | 'select' | 'checkbox' | 'datetime' | 'segmented';
  placeholder?: string;
  /** checkbox, datetime: the words beside it */
  label?: string;
  /** select, segmented: the options (select: after an empty one labelled `all`) */
  options?: { value: string; label: string }[];
  all?: string;
  /** text: keep digits only */
  digits?: boolean;
  width?: number;
  testid?: string;
  /** the initial value (else empty, or the first option of a segmented filter) */
  initial?: string;
  /** the initial value comes from this parameter of the page's URL */
  fromUrl?: string;
  /** an empty value is left out of the query rather than sent empty */
  omitEmpty?: boolean;
}

/** What the filters may depend on: the user's rights. */
export interface FilterContext {
  can: (action: string) => boolean;
}

/** The delete button of a row, when it is not a plain ‘delete’ (e.g. a grant is revoked). */
export interface Deletion<R> {
  /** message key of the button (default `common.delete`) */
  label?: string;
  /** the confirmation's question (default `admin.confirmDelete` with the row's label) */
  confirm?: (t: T, r: R) => string;
  /** which rows have the button (default every row) */
  when?: (r: R) => boolean;
  /** read the list again afterwards: the row stays, changed, rather than going */
  reload?: boolean;
}

export interface Option {
  value: string;
  label: string;
}

/** What a form's fields may depend on: whether a row is edited, and options read at run time. */
export interface FieldContext {
  editing: boolean;
  options: Record<string, Option[]>;
}

export type Paged<R> = ReturnType<typeof usePaged<R>>;

/** What a resource's own hook gives the table: its extra pieces. */
export interface Extras<R> {
  /** in the toolbar, before the filters */
  lead?: ReactNode;
  /** above the toolbar */
  top?: ReactNode;
  /** in the toolbar, after the filters, before the ＋ button */
  toolbar?: ReactNode;
  /** between the toolbar and the table */
  above?: ReactNode;
  /** row buttons for those who manage the resource, before ‘edit’ and after it (before ‘delete’) */
  rowBefore?: (r: R) => ReactNode;
  rowAfter?: (r: R) => ReactNode;
  /** row buttons for everyone who sees the table (the hook decides which, row by row) */
  row?: (r: R) => ReactNode;
}

export interface ExtrasContext<R> {
  t: T;
  list: Paged<R>;
  /** the user may manage this resource */
  manage: boolean;
  /** the filters' values the list was read with */
  values: Record<string, string>;
  /** the list's query as sent (fixed parameters and filters, without paging) */
  query: Record<string, string | number | boolean | undefined>;
}

/**
 * A resource of the administration pages, described: its list endpoint and paging, filters,
 * columns, form fields, create/update/delete endpoints and the action a user needs for the
 * buttons. ResourceTable and ResourceForm do the rest.
 */
export interface Resource<R> {
  /** the tab's id: the table is `data-testid="<id>-table"`, its title `admin.tab.<id>` */
  id: string;
  /** list (GET) and create (POST) endpoint */
  path: string;
  key: (r: R) => string | number;
  /** the label of a row in the delete confirmation (default its key) */
  label?: (r: R) => string;
  /** the action a user needs to see ＋, edit and delete; none: nobody manages it here (a log) */
  manage?: string;
  /** message keys of the ＋ button / new dialog and of the edit dialog: without newTitle there
   *  is no ＋, without editTitle no edit (a resource made once and then only revoked) */
  newTitle?: string;
  editTitle?: string;
  /** what follows the edit dialog's title (` · <name>`) */
  titleOf?: (r: Partial<R>) => string;
  /** rows may be deleted: no (false), as ‘delete’ (default), or as described */
  deletion?: false | Deletion<R>;
  filters: (t: T, ctx: FilterContext) => Filter[];
  /** the filters apply when this search button is pressed (its data-testid), not as typed */
  searchButton?: string;
  /** fixed query parameters of the list (e.g. with_total) */
  query?: Record<string, string | number | boolean>;
  /** how the list endpoint pages (default 50 a page, `cursor` / `next_cursor`) */
  paging?: Paging;
  /** show the total under the table */
  total?: boolean;
  columns: (t: T) => Col<R>[];
  /** the form's fields (none: no form); a `fixed` one is read-only when editing and not sent with the update */
  fields?: (t: T, ctx: FieldContext) => (Field & { fixed?: boolean })[];
  /** options the fields read from the platform (a hook) */
  useOptions?: () => Record<string, Option[]>;
  /** what a new row starts with, given the filters' values */
  blank?: (filters: Record<string, string>) => Partial<R>;
  /** a row as the form shows it, and the form's values as the endpoint takes them */
  toForm?: (r: Partial<R>) => Record<string, unknown>;
  toBody?: (v: Record<string, unknown>, editing: boolean) => Record<string, unknown>;
  /** an edit replaces the whole row (PUT) rather than changing the fields sent (PATCH) */
  replace?: boolean;
  /** which empty (null) values are left out: on create; on update, all or those the row did not have */
  dropNulls?: { create?: boolean; update?: 'all' | 'unknown' };
  /** the resource's own pieces (a hook: it may hold state) */
  useExtras?: (ctx: ExtrasContext<R>) => Extras<R>;
}

/** The item endpoint of a row. */
/** The query parameters of the filters' values. */
export function filterQuery(filters: Filter[], values: Record<string, string>): Record<string, string | undefined> {
  const q: Record<string, string | undefined> = {};
  for (const f of filters) {
    const v = values[f.param] ?? '';
    q[f.param] = f.kind === 'datetime' ? (v ? new Date(v).toISOString() : undefined) : f.omitEmpty || f.kind === 'checkbox' ? v || undefined : v;
  }
  return q;
}

/** A filter's value before anything is chosen. */
export function initialValue(f: Filter, params: URLSearchParams): string {
  return (f.fromUrl && params.get(f.fromUrl)) || f.initial || (f.kind === 'segmented' ? (f.options?.[0]?.value ?? '') : '');
}

export function itemPath<R>(res: Resource<R>, r: Partial<R> & object): string {
  return `${res.path}/${encodeURIComponent(String(res.key(r as R)))}`;
}
