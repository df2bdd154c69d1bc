"""The legal data: grades, reporting clocks, criminal thresholds and penalties, read from YAML.

Law text changes, so every figure lives in ``config/legal/*.yaml`` and none in Python. Each file is
looked up in the config search path (the workspace's ``config/`` first, then the built-in one): a
workspace file of the same name replaces the built-in file as a whole. Every file is validated when
loaded, so a typo in a threshold is refused with the file and the problem named, never used.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.errors import BadInput, NotFound
from engine.legal.facts import GRADES, HARMS, OPERATOR_TYPES, RECORD_CATEGORIES, Grade, Harm, OperatorType
from engine.workspace import builtin_root

__all__ = [
    "InitialReportClock",
    "LegalData",
    "Penalty",
    "RuleInfo",
    "builtin_legal",
    "load_legal",
]

Figure = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
GroupId = Literal["A", "B", "C"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DataT = TypeVar("_DataT", bound=_Data)


class RuleInfo(_Data):
    """What every rule and penalty carries: its stable id and where the law says it."""

    id: str
    title: str = ""
    article: str
    source: str
    # False when the figure is known only from a secondary source (docs/law/cn.md); shown to the operator.
    verified: bool


class GradeLabel(_Data):
    id: Grade
    label: str
    label_en: str


class GradeThreshold(_Data):
    grade: Grade
    people_affected: Annotated[int, Field(gt=0)]
    economic_loss_rmb: Figure


class CacGradeRule(RuleInfo):
    floor_grade: Grade
    thresholds: list[GradeThreshold]

    @model_validator(mode="after")
    def _highest_first(self) -> CacGradeRule:
        ranks = [GRADES.index(t.grade) for t in self.thresholds]
        if ranks != sorted(ranks, reverse=True) or len(set(ranks)) != len(ranks):
            raise ValueError("thresholds must list each grade once, highest grade first")
        return self


class MiitGradeRule(RuleInfo):
    grade: Grade
    people_affected: Annotated[int, Field(gt=0)]


class GradingFile(_Data):
    grades: list[GradeLabel]
    cac_grade: CacGradeRule
    miit_grade: MiitGradeRule

    @model_validator(mode="after")
    def _contract_ids(self) -> GradingFile:
        # The ids are the JSON contract and their order is the ranking; only labels are free.
        if tuple(g.id for g in self.grades) != GRADES:
            raise ValueError(f"grades must list exactly {', '.join(GRADES)}, lowest first")
        return self


class ReportClock(_Data):
    duration: Annotated[str, Field(pattern=r"^[1-9][0-9]*h$")]
    wording: str
    recipient: str


class InitialReportRule(RuleInfo):
    min_grade: Grade
    starts_at: str
    clocks: dict[OperatorType, ReportClock]
    also_report: list[str] = []
    consequences: list[str] = []
    # Shown when the incident is below min_grade, so "no clock" is not read as "no duty".
    other_duties: str
    other_duties_en: str

    @model_validator(mode="after")
    def _every_operator_type(self) -> InitialReportRule:
        missing = [t for t in OPERATOR_TYPES if t not in self.clocks]
        if missing:
            raise ValueError(f"clocks must cover every operator_type; missing {', '.join(missing)}")
        return self


class ReportingFile(_Data):
    initial_report: InitialReportRule


class RecordGroup(_Data):
    id: GroupId
    label: str
    label_en: str
    categories: list[str]


class Outcome(_Data):
    id: str
    label: str
    sentence: str | None = None


class GroupThresholds(_Data):
    A: Figure
    B: Figure
    C: Figure


def _outcome_ids(outcomes: list[Outcome], expected: tuple[str, ...]) -> None:
    if tuple(o.id for o in outcomes) != expected:
        raise ValueError(f"outcomes must list exactly {', '.join(expected)}, least severe first")


class Spc2017Items(_Data):
    sold_tracks_used_in_crime: int
    knew_buyer_criminal: int
    A: int
    B: int
    C: int
    pro_rata: int
    gains: int
    insider: int
    prior_penalty: int


class Spc2017Rule(RuleInfo):
    subject: str
    items: Spc2017Items
    item_labels: dict[int, str]
    thresholds: GroupThresholds
    gains_rmb: Figure
    insider_factor: Annotated[Decimal, Field(gt=0, le=1)]
    especially_serious_factor: Annotated[Decimal, Field(ge=1)]
    especially_serious_harms: list[Harm]
    outcomes: list[Outcome]
    unit_crime: str

    @model_validator(mode="after")
    def _outcomes(self) -> Spc2017Rule:
        _outcome_ids(self.outcomes, ("not_met", "serious", "especially_serious"))
        return self


class Spc2019Items(_Data):
    A: int
    B: int
    C: int
    pro_rata: int


class Spc2019Rule(RuleInfo):
    subject: str
    items: Spc2019Items
    harm_items: dict[Harm, int]
    item_labels: dict[int, str]
    thresholds: GroupThresholds
    outcomes: list[Outcome]
    unit_crime: str

    @model_validator(mode="after")
    def _outcomes(self) -> Spc2019Rule:
        _outcome_ids(self.outcomes, ("not_applicable", "not_met", "serious_consequences"))
        return self


class CriminalFile(_Data):
    record_groups: list[RecordGroup]
    category_labels: dict[str, str]
    harm_labels: dict[Harm, str]
    spc_2017: Spc2017Rule
    spc_2019: Spc2019Rule

    @model_validator(mode="after")
    def _partition(self) -> CriminalFile:
        # Each record category of the facts must count in exactly one group, or records vanish.
        listed = [c for g in self.record_groups for c in g.categories]
        group_ids = [g.id for g in self.record_groups]
        if sorted(listed) != sorted(RECORD_CATEGORIES) or group_ids != ["A", "B", "C"]:
            raise ValueError(
                "record_groups must be A, B, C and together list each of "
                f"{', '.join(RECORD_CATEGORIES)} exactly once"
            )
        if set(self.category_labels) != set(RECORD_CATEGORIES):
            raise ValueError(f"category_labels must name exactly {', '.join(RECORD_CATEGORIES)}")
        if set(self.harm_labels) != set(HARMS):
            raise ValueError(f"harm_labels must name exactly {', '.join(HARMS)}")
        return self


class PenaltyTier(_Data):
    when: str
    measures: str


class Penalty(RuleInfo):
    """An administrative penalty article, cited in the report under the findings it ``applies_to``."""

    applies_to: list[str]
    tiers: list[PenaltyTier]


class PenaltiesFile(_Data):
    penalties: list[Penalty]


class InitialReportClock(NamedTuple):
    """The initial-report duty for one operator type: how long, to whom, under which rule."""

    duration: str
    recipient: str
    rule: InitialReportRule


class LegalData(_Data):
    """All legal data in force, with the path each file was read from."""

    grading: GradingFile
    reporting: ReportingFile
    criminal: CriminalFile
    penalties: PenaltiesFile
    files: dict[str, Path]

    @property
    def cac_grade(self) -> CacGradeRule:
        return self.grading.cac_grade

    @property
    def miit_grade(self) -> MiitGradeRule:
        return self.grading.miit_grade

    @property
    def initial_report(self) -> InitialReportRule:
        return self.reporting.initial_report

    @property
    def spc_2017(self) -> Spc2017Rule:
        return self.criminal.spc_2017

    @property
    def spc_2019(self) -> Spc2019Rule:
        return self.criminal.spc_2019

    def rules(self) -> list[RuleInfo]:
        """Every rule and penalty entry, assessment rules first."""
        return [
            self.cac_grade,
            self.miit_grade,
            self.initial_report,
            self.spc_2017,
            self.spc_2019,
            *self.penalties.penalties,
        ]

    def rule(self, rule_id: str) -> RuleInfo:
        """The rule or penalty with this id (e.g. ``CN-SPC-2017-5``).

        :raises NotFound: naming the ids that exist.
        """
        for rule in self.rules():
            if rule.id == rule_id:
                return rule
        known = ", ".join(r.id for r in self.rules())
        raise NotFound(f"unknown legal rule {rule_id!r}: known rules are {known}")

    def grade_label(self, grade: str) -> str:
        """The Chinese label of a grade id (``relatively_major`` → 较大)."""
        return next(g.label for g in self.grading.grades if g.id == grade)

    def initial_report_clock(self, operator_type: str) -> InitialReportClock:
        """The CN-CAC-RPT-4 clock for an operator type: ``("4h", recipient, rule)`` for ``other``.

        The clock applies only to incidents graded at least ``rule.min_grade``.
        """
        rule = self.initial_report
        if operator_type not in rule.clocks:
            raise BadInput(f"unknown operator_type {operator_type!r}: expected {', '.join(OPERATOR_TYPES)}")
        clock = next(c for t, c in rule.clocks.items() if t == operator_type)
        return InitialReportClock(clock.duration, clock.recipient, rule)

    def penalties_for(self, rule_id: str) -> list[Penalty]:
        """The penalty entries the report cites under a finding's rule."""
        return [p for p in self.penalties.penalties if rule_id in p.applies_to]

    def group_counts(self, records: dict[str, int]) -> dict[str, int]:
        """Sum record counts per group (A, B, C), the unit both interpretations count in."""
        return {g.id: sum(records.get(c, 0) for c in g.categories) for g in self.criminal.record_groups}


def _read(path: Path, model: type[_DataT]) -> _DataT:
    from engine.files import load_yaml, read_text
    from engine.files.parsed import MISSING, recall, remember

    text = read_text(path, what="legal data file")
    # Read back when this text parsed before (engine.files.parsed): every write command needs the data.
    raw: Any = recall("legal", text, parsers=("engine.files.structured",))
    if raw is MISSING:
        raw = load_yaml(text, str(path))
        remember("legal", text, raw, parsers=("engine.files.structured",))
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: legal data must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise BadInput(f"{path}: invalid legal data: {problems}") from None


def load_legal(config_dirs: list[Path]) -> LegalData:
    """Load ``legal/*.yaml`` from the config folders, the first folder holding a file winning.

    Pass ``Workspace.search_path("config")`` so a workspace's file shadows the built-in one.

    :raises BadInput: naming the file and the problem when a file is missing or invalid.
    """
    files: dict[str, Path] = {}

    def load(name: str, model: type[_DataT]) -> _DataT:
        path = next((d / "legal" / name for d in config_dirs if (d / "legal" / name).is_file()), None)
        if path is None:
            searched = ", ".join(str(d / "legal") for d in config_dirs)
            raise BadInput(f"legal data file {name} not found in {searched}")
        files[name] = path
        return _read(path, model)

    # One file after the other, so the first missing or invalid one is the one reported.
    grading = load("grading.yaml", GradingFile)
    reporting = load("reporting.yaml", ReportingFile)
    criminal = load("criminal.yaml", CriminalFile)
    penalties = load("penalties.yaml", PenaltiesFile)
    data = LegalData(
        grading=grading, reporting=reporting, criminal=criminal, penalties=penalties, files=files
    )
    known = {r.id for r in data.rules()}
    for penalty in data.penalties.penalties:
        unknown = [r for r in penalty.applies_to if r not in known]
        if unknown:
            raise BadInput(
                f"{files['penalties.yaml']}: {penalty.id} applies_to unknown rules {', '.join(unknown)}"
            )
    return data


@lru_cache(maxsize=1)
def builtin_legal() -> LegalData:
    """The legal data shipped with the package, loaded once (for tests and workspace-less use)."""
    return load_legal([builtin_root() / "config"])
