import type { ReactNode } from 'react';
import type { Col, Field, usePaged } from '../components/Data';
import type { T } from '../i18n';

/** A filter above a resource's table: one query parameter of its list endpoint. */
export interface Filter {
  param: string;
  kind: 'search' | 'text' | 'select';
  placeholder?: string;
  /** select: the options, after an empty one labelled `all` */
  options?: { value: string; label: string }[];
  all?: string;
  /** text: keep digits only */
  digits?: boolean;
  width?: number;
  testid?: string;
  /** the initial value comes from this parameter of the page's URL */
  fromUrl?: string;
  /** an empty value is left out of the query rather than sent empty */
  omitEmpty?: boolean;
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
  /** row buttons before ‘edit’ and after it (before ‘delete’) */
  rowBefore?: (r: R) => ReactNode;
  rowAfter?: (r: R) => ReactNode;
}

export interface ExtrasContext<R> {
  t: T;
  list: Paged<R>;
  /** the user may manage this resource */
  manage: boolean;
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
  /** the label of a row in the delete confirmation */
  label: (r: R) => string;
  /** the action a user needs to see ＋, edit and delete */
  manage: string;
  /** message keys of the ＋ button / new dialog and of the edit dialog */
  newTitle: string;
  editTitle: string;
  /** what follows the edit dialog's title (` · <name>`) */
  titleOf?: (r: Partial<R>) => string;
  /** rows may be deleted (default true) */
  deletable?: boolean;
  filters: (t: T) => Filter[];
  /** fixed query parameters of the list (e.g. with_total) */
  query?: Record<string, string | number | boolean>;
  /** show the total under the table */
  total?: boolean;
  columns: (t: T) => Col<R>[];
  /** the form's fields; a `fixed` one is read-only when editing and not sent with the update */
  fields: (t: T, ctx: FieldContext) => (Field & { fixed?: boolean })[];
  /** options the fields read from the platform (a hook) */
  useOptions?: () => Record<string, Option[]>;
  /** what a new row starts with, given the filters' values */
  blank?: (filters: Record<string, string>) => Partial<R>;
  /** a row as the form shows it, and the form's values as the endpoint takes them */
  toForm?: (r: Partial<R>) => Record<string, unknown>;
  toBody?: (v: Record<string, unknown>, editing: boolean) => Record<string, unknown>;
  /** which empty (null) values are left out: on create; on update, all or those the row did not have */
  dropNulls?: { create?: boolean; update?: 'all' | 'unknown' };
  /** the resource's own pieces (a hook: it may hold state) */
  useExtras?: (ctx: ExtrasContext<R>) => Extras<R>;
}

/** The item endpoint of a row. */
export function itemPath<R>(res: Resource<R>, r: Partial<R> & object): string {
  return `${res.path}/${encodeURIComponent(String(res.key(r as R)))}`;
}
