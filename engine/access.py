"""Who may take which step: operators' roles from config, and the log of refused attempts.

A playbook transition may require a role (only the DPO submits the regulator report) and a guard may
require the approver to hold one (only the DPO approves a waiver). The workspace's ``[roles]`` settings
map operators to roles. A workspace whose settings name no member at all runs in single-operator mode:
every account holds every role, and ``breach whoami``, ``breach config check`` and the what-now block
say so. Once any member is named (even one without roles), an account the settings do not name holds no
role: naming a colleague must never leave strangers with the DPO's powers.

An attempt refused for want of a role is recorded in the workspace log (``engine.incidents.worklog``), not in
the incident's trail: a refused step must leave the incident, its version and its events exactly as they were,
yet the attempt itself must not vanish.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import BadInput

__all__ = [
    "SINGLE_OPERATOR",
    "Member",
    "RoleMap",
    "entered_for",
    "enterer",
    "identity_key",
    "normal_name",
    "same_person",
]

SINGLE_OPERATOR = (
    "single-operator mode: config/settings.toml names no member, so anyone at any account acts as every "
    'role; name the team there ([members."ACCOUNT"] roles = ["dpo"]) to enforce roles'
)
"""The one line every screen that relies on single-operator mode shows."""

# What ``--as`` records: the person the step was done by, and the account that entered it for them.
_ENTERED = re.compile(r"^(?P<for>.+) \(entered by (?P<by>[^()]+)\)$")
# Unicode categories no name needs, and that make two names look alike while comparing unequal:
# controls, format characters (zero-width space and joiners, bidi marks), separators other than space,
# unassigned and private-use code points.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def normal_name(raw: str, *, what: str = "name") -> str:
    """A person's name or account as breach records it: NFKC-normalised and trimmed.

    :raises BadInput: when it is empty, longer than 100 characters, or holds a control or format
        character (a zero-width space would make 'wang.dpo' and 'wang.dpo\u200b' two people).
    """
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        raise BadInput(f"the {what} must not be empty")
    if len(name) > 100:
        raise BadInput(f"the {what} is longer than 100 characters")
    bad = [ch for ch in name if unicodedata.category(ch) in _REFUSED_CATEGORIES]
    if bad:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(bad))
        raise BadInput(f"the {what} {name!r} holds invisible or control characters ({shown})")
    return " ".join(name.split())


def identity_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, invisible characters dropped."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    kept = "".join(ch for ch in folded if unicodedata.category(ch) not in _REFUSED_CATEGORIES)
    return " ".join(kept.split())


def entered_for(person: str, account: str) -> str:
    """The actor recorded when ``account`` enters what ``person`` did (``--as``)."""
    return f"{person} (entered by {account})"


def enterer(actor: str) -> str:
    """The account that acted: the one that entered the step when it was recorded for someone else."""
    match = _ENTERED.match(actor)
    return match.group("by") if match else actor


def same_person(a: str, b: str) -> bool:
    """Whether two recorded actors or names can be the same person (either side of an entry counts)."""

    def people(actor: str) -> set[str]:
        match = _ENTERED.match(actor)
        names = [match.group("for"), match.group("by")] if match else [actor]
        return {identity_key(n) for n in names}

    return bool(people(a) & people(b))


@dataclass(frozen=True)
class Member:
    """A person of the firm's team: the account they act under, how documents name them, their roles.

    ``account`` is what identifies them to breach (an OS account or a database login); ``name``,
    ``department`` and ``position`` are what documents and the record show.
    """

    account: str
    name: str
    department: str = ""
    position: str = ""
    roles: frozenset[str] = frozenset()

    @property
    def described(self) -> str:
        """How documents name the member: 王芳（法务部 数据保护负责人）, or the bare name."""
        detail = " ".join(part for part in (self.department, self.position) if part)
        return f"{self.name}（{detail}）" if detail else self.name


def _members(settings: Mapping[str, Any]) -> dict[str, Member]:
    """``[members.<account>]`` tables (name, department, position, roles), then the older
    ``[roles.members]`` form (account = [roles]), keyed by the case-folded account."""
    found: dict[str, Member] = {}
    for account, entry in (settings.get("members") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        found[identity_key(str(account))] = Member(
            account=str(account),
            name=str(entry.get("name") or account),
            department=str(entry.get("department") or ""),
            position=str(entry.get("position") or ""),
            roles=frozenset(map(str, entry.get("roles") or ())),
        )
    legacy = (settings.get("roles") or {}).get("members") or {}
    for account, roles in legacy.items():
        key = identity_key(str(account))
        known = found.get(key)
        extra = frozenset(map(str, roles))
        found[key] = (
            Member(account=str(account), name=str(account), roles=extra)
            if known is None
            else Member(known.account, known.name, known.department, known.position, known.roles | extra)
        )
    return found


@dataclass(frozen=True)
class RoleMap:
    """The team and their roles, from the ``[members]`` (and older ``[roles.members]``) settings."""

    people: Mapping[str, Member]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RoleMap:
        """Read the team from the settings; accounts compare case-insensitively."""
        return cls(_members(settings))

    @property
    def members(self) -> Mapping[str, frozenset[str]]:
        """Each member's roles, by case-folded account."""
        return {key: member.roles for key, member in self.people.items()}

    @property
    def enforced(self) -> bool:
        """Whether roles are enforced: as soon as the settings name any member, with roles or not."""
        return bool(self.people)

    @property
    def single_operator(self) -> bool:
        """Whether the settings name no member, so every account holds every role."""
        return not self.enforced

    def member(self, account: str) -> Member | None:
        """The member acting under ``account``, if the settings name them."""
        return self.people.get(identity_key(account))

    def holds(self, name: str, role: str) -> bool:
        """Whether ``name`` may act in ``role`` (always, in single-operator mode).

        A step entered for someone else (``--as``) holds the roles of the account that entered it,
        never those of the person it names.
        """
        roles = self.roles_of(name)
        return roles is None or role in roles

    def roles_of(self, name: str) -> frozenset[str] | None:
        """The roles of ``name``; None in single-operator mode, meaning "any role"."""
        if not self.enforced:
            return None
        member = self.member(enterer(name))
        return member.roles if member is not None else frozenset()
