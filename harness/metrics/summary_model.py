"""The typed form of summary.json (schema `turnbench.summary/2`): what readers may rely on.

Built from the metric catalogue, so a metric declared there is typed here too. Extra fields
are allowed (the schema grows by adding fields, never by renaming); a field of the wrong type
is an `InputError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from harness.errors import InputError
from harness.metrics import catalog


class Percentiles(BaseModel):
    """A distribution: exact percentiles over the raw samples, bootstrap 95 % CIs of P50 and P99."""

    model_config = ConfigDict(extra="allow")
    n: int = Field(ge=0)
    p50: float
    p90: float
    p99: float
    mean: float
    max: float
    ci95: dict[str, list[float] | None] = Field(default_factory=dict)
    p99_low_n: bool = False


class Harness(BaseModel):
    """The harness's health during the run (send lateness, loop lag, CPU steal, overloaded)."""

    model_config = ConfigDict(extra="allow")
    overloaded: bool = False


class SummaryBase(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    schema_: str = Field(alias="schema", pattern=r"^turnbench\.summary/")
    calls: int = Field(ge=0)
    turns: int = Field(ge=0)
    errors: dict[str, int] = Field(default_factory=dict)
    error_examples: dict[str, str] = Field(default_factory=dict)
    """The first message of each kind of error (`protocol error: malformed JSON …`)."""
    target: str | None = None
    transport: str | None = None
    scenario: str | None = None
    stages_ms: dict[str, Percentiles | None] | None = None
    setup_ms: Percentiles | None = None
    harness: Harness = Field(default_factory=Harness)
    thresholds: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    target_spoke: bool | None = None


def summary_model() -> type[BaseModel]:
    """The summary model with one typed field per catalogue metric."""
    fields: dict[str, Any] = {}
    for m in catalog.CATALOG:
        if m.aggregate == "percentiles":
            fields[m.name] = (Percentiles | None, None)
        elif m.aggregate == "rate":
            fields[m.name] = (float | None, Field(None, ge=0, le=1))
            fields[f"{m.name}_ci95"] = (list[float] | None, None)
            fields[f"{m.name}_n"] = (int, Field(0, ge=0))
        else:
            fields[m.name] = (float | None, None)
    return create_model("Summary", __base__=SummaryBase, **fields)


def validate_summary(doc: Any, path: Path | str) -> BaseModel:
    """A summary.json document, typed; InputError naming the file and the first bad field."""
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a JSON object")
    try:
        return summary_model().model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise InputError(f"{path}: {where}: {err['msg']}") from None
