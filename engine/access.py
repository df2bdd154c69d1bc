"""Who may take which step: operators' roles from config, and the log of refused attempts.

A playbook transition may require a role (only the DPO submits the regulator report) and a guard may
require the approver to hold one (only the DPO approves a waiver). The workspace's ``[roles]`` settings
map operators to roles. An account holds only the roles its member table lists: a workspace whose
settings name no member gives no one any role, so its role-gated steps are refused until a member is
named (``breach init`` names the account that runs it, with every role the built-in playbooks use).
Each refusal says which role was wanted and the ``breach config set`` line that grants it.

An attempt refused for want of a role is recorded in the workspace log (``engine.incidents.worklog``), not in
the incident's trail: a refused step must leave the incident, its version and its events exactly as they were,
yet the attempt itself must not vanish.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import BadInput

__all__ = [
    "NO_MEMBERS",
    "Member",
    "RoleMap",
    "entered_for",
    "enterer",
    "grant_command",
    "identity_key",
    "no_members_line",
    "normal_name",
    "same_person",
]

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


def grant_command(account: str, roles: Iterable[str]) -> str:
    """The command that makes ``account`` a member holding ``roles`` (``breach config set`` replaces
    the member's whole list, so ``roles`` must include those they keep)."""
    key = shlex.quote(f"members.{account}.roles")
    return f"breach config set {key} {shlex.quote(','.join(sorted(set(roles))))}"


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
    def named(self) -> bool:
        """Whether the settings name any member: until they do, no one holds a role."""
        return bool(self.people)

    def member(self, account: str) -> Member | None:
        """The member acting under ``account``, if the settings name them."""
        return self.people.get(identity_key(account))

    def holds(self, name: str, role: str) -> bool:
        """Whether ``name`` may act in ``role``: only a member whose table lists it.

        A step entered for someone else (``--as``) holds the roles of the account that entered it,
        never those of the person it names.
        """
        return role in self.roles_of(name)

    def roles_of(self, name: str) -> frozenset[str]:
        """The roles of ``name`` (of the account that entered it, for a step entered with ``--as``)."""
        member = self.member(enterer(name))
        return member.roles if member is not None else frozenset()

    def how_to_grant(self, name: str, roles: Iterable[str]) -> str:
        """What a refusal for want of ``roles`` adds: why the account lacks them and the command that
        grants them (keeping the roles it holds)."""
        account = enterer(name)
        command = grant_command(account, self.roles_of(account) | set(roles))
        if not self.named:
            return f"{NO_MEMBERS}; to make {account} a member with it: {command}"
        if self.member(account) is None:
            return f"{account} is not a member in config/settings.toml; to add them: {command}"
        return f"to grant it to {account}: {command}"


NO_MEMBERS = "config/settings.toml names no member, so no one holds a role"
"""Why a workspace without members refuses every role-gated step."""


def no_members_line(account: str, roles: Iterable[str]) -> str:
    """The line whoami, config check and the what-now block show while no member is named."""
    listed = sorted(set(roles)) or ["ROLE"]
    return f"{NO_MEMBERS}: role-gated steps are refused; add a member with: {grant_command(account, listed)}"
