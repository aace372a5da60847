"""The camera resource survey (摸底调查): Form 1 and Form 2 in and out as spreadsheets.

Form 1, 社会视频监控资源摸底调查表, has one row per system or separately networked area
(segment) of a unit; it fills :class:`~xueliang.db.tables.Unit` and
:class:`~xueliang.db.tables.Platform`. Form 2, 摸底汇总表, is a department's summary; it is
kept as reported in :class:`~xueliang.db.tables.SurveySummary`, and can be computed from the
registry on export.

Imports are all-or-nothing: every row is checked, every problem is reported with its row
number (as in the file), column header, value and reason, and only a file without problems is
written, in one transaction. Exports write the forms' own layout and words, so that
export → import reports everything unchanged.

One idea a module (the choices where the survey spec is silent are in their docstrings):

* :mod:`.cells`: a survey cell's vocabulary both ways, the parsers (counts, dates, platform
  types, networks, retention, the forms' word lists) and the texts that parse back the same;
* :mod:`.reader`: the sheets, the forms' titles and headers, which form a file is, and the
  column maps (header row to columns, each Form 1 column to the fields it fills);
* :mod:`.importer`: validation and the all-or-nothing import, with its report;
* :mod:`.writer`: the exports, Form 1 and Form 2 (one sheet per department in a workbook);
* :mod:`.queries`: what import and export both ask of the registry (rows by many keys, in
  chunks; the order of a unit's systems).

This package re-exports the names other code uses.
"""

from __future__ import annotations

from xueliang.registry.survey.cells import (
    CAMERA_KIND,
    COVERAGE,
    KIND_LABELS,
    MAX_COUNT,
    NETWORK,
    NETWORK_LOOKUP_EXTRA,
    PROVIDE,
    SIGNAL_LABELS,
    STORAGE,
    SUPPORT,
    UNIT_CATEGORY,
    Lookup,
    clean_text,
    count_text,
    network_text,
    parse_built_on,
    parse_count,
    parse_network,
    parse_platform_type,
    parse_retention,
    platform_type_text,
)
from xueliang.registry.survey.importer import import_survey
from xueliang.registry.survey.queries import CHUNK
from xueliang.registry.survey.reader import (
    DEPARTMENT,
    FORM1_HEADERS,
    FORM1_PARSERS,
    FORM1_TITLE,
    FORM2_HEADERS,
    FORM2_TITLE,
    UNIT_FIELDS,
    ColumnMap,
    header_key,
    map_columns,
)
from xueliang.registry.survey.writer import export_summary, export_survey, form1_row

__all__ = [
    "CAMERA_KIND",
    "CHUNK",
    "COVERAGE",
    "DEPARTMENT",
    "FORM1_HEADERS",
    "FORM1_PARSERS",
    "FORM1_TITLE",
    "FORM2_HEADERS",
    "FORM2_TITLE",
    "KIND_LABELS",
    "MAX_COUNT",
    "NETWORK",
    "NETWORK_LOOKUP_EXTRA",
    "PROVIDE",
    "SIGNAL_LABELS",
    "STORAGE",
    "SUPPORT",
    "UNIT_CATEGORY",
    "UNIT_FIELDS",
    "ColumnMap",
    "Lookup",
    "clean_text",
    "count_text",
    "export_summary",
    "export_survey",
    "form1_row",
    "header_key",
    "import_survey",
    "map_columns",
    "network_text",
    "parse_built_on",
    "parse_count",
    "parse_network",
    "parse_platform_type",
    "parse_retention",
    "platform_type_text",
]
