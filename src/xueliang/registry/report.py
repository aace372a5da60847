"""The import report: every problem with its row, column, value and reason."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Problem(BaseModel):
    row: int | None = None
    column: str | None = None
    value: str | None = None
    reason: str


class ImportReport(BaseModel):
    file: str = ""
    form: str = ""
    ok: bool = True
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Units named in the file that were not registered and have been created.
    new_units: list[str] = Field(default_factory=list)
    #: Townships and villages ("code name") the file named under a registered county that the
    #: registry did not hold, created from the file.
    new_divisions: list[str] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    warnings: list[Problem] = Field(default_factory=list)

    def add(
        self,
        reason: str,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.ok = False
        self.problems.append(Problem(row=row, column=column, value=value, reason=reason))

    def warn(
        self,
        reason: str,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.warnings.append(Problem(row=row, column=column, value=value, reason=reason))

    def text(self) -> str:
        head = f"{self.file or 'file'}: "
        if self.ok:
            lines = [
                head
                + f"imported {self.rows} rows: {self.created} created, {self.updated} updated, {self.unchanged} unchanged"
            ]
            if self.new_units:
                lines.append("new units created: " + ", ".join(self.new_units))
            if self.new_divisions:
                lines.append(
                    "new divisions created (not in the national list): " + ", ".join(self.new_divisions)
                )
        else:
            lines = [
                head + f"NOT imported: {len(self.problems)} problem(s); the database is unchanged"
            ]
            for p in self.problems:
                where = ", ".join(
                    x
                    for x in (
                        f"row {p.row}" if p.row else "",
                        f"column {p.column}" if p.column else "",
                    )
                    if x
                )
                val = f" value {p.value!r}" if p.value not in (None, "") else ""
                lines.append(f"  {where or 'file'}:{val} {p.reason}")
        for w in self.warnings:
            lines.append(f"  warning: row {w.row} {w.column or ''} {w.reason}")
        return "\n".join(lines)
