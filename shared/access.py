"""Who may read what: document access lists, callers' identities, the search scope.

A document carries an optional access list of groups (``IndexOperation.groups``):

* absent (``None``): readable by every authenticated caller;
* ``[]``: readable by nobody but admins;
* ``["hr", "finance"]``: readable by members of any of those groups.

A caller is a :class:`Principal`: an id and the groups the authenticator
vouched for (never anything from the client's message). Its :class:`Access`
is what every search is scoped to. Indexes store, per chunk, the list of
*access terms* that open it (:func:`access_terms`), and a caller's search
matches any of the caller's terms (:meth:`Access.terms`), so the check is one
``terms`` filter on a keyword field, inside the k-NN clause.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

# Group names: short, printable, starting with a letter or digit, so that the
# two reserved terms below can never be a group.
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+/=-]{0,127}$"
MAX_GROUPS = 100
GroupName = Annotated[str, Field(pattern=GROUP_PATTERN)]
AccessList = Annotated[list[GroupName], Field(max_length=MAX_GROUPS)]

# The term stored on chunks readable by every authenticated caller.
EVERYONE = "*"
# The term stored on chunks with an explicit empty list: it matches no caller's
# terms, so only an unrestricted (admin) search sees them. It also keeps the
# field non-empty, which tells these chunks apart from chunks written before
# access lists existed (no field at all), which are readable by everyone.
NOBODY = "~"
# The index field (OpenSearch keyword / SQLite side table) holding the terms.
ACCESS_FIELD = "access"


def access_terms(groups: Sequence[str] | None) -> list[str]:
    """The terms stored on a chunk with this access list."""
    if groups is None:
        return [EVERYONE]
    return sorted(set(groups)) or [NOBODY]


def groups_from_terms(terms: Sequence[str] | None) -> list[str] | None:
    """The inverse of :func:`access_terms` (no terms at all: a pre-access chunk)."""
    if not terms or EVERYONE in terms:
        return None
    return [t for t in terms if t != NOBODY]


@dataclass(frozen=True)
class Access:
    """The scope of one search: unrestricted (admins, single-user local mode)
    or the documents open to any of ``groups`` and to everyone."""

    groups: frozenset[str] = frozenset()
    unrestricted: bool = False

    @classmethod
    def everything(cls) -> Access:
        return cls(unrestricted=True)

    @classmethod
    def of(cls, groups: Iterable[str]) -> Access:
        return cls(groups=frozenset(groups))

    def terms(self) -> list[str]:
        """Terms a chunk must carry one of (meaningless when unrestricted)."""
        return [EVERYONE, *sorted(self.groups)]

    def may_read(self, groups: Sequence[str] | None) -> bool:
        """Whether a document with this access list is in scope."""
        if self.unrestricted or groups is None:
            return True
        return bool(self.groups.intersection(groups))


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as the authenticator described it."""

    id: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    @classmethod
    def single_user(cls) -> Principal:
        """Local mode without a tokens file: the laptop's one user reads everything."""
        return cls(id="local", admin=True)

    @classmethod
    def from_claims(cls, principal_id: str, groups: Iterable[str], admin_group: str) -> Principal:
        members = frozenset(groups)
        return cls(id=principal_id, groups=members, admin=admin_group in members)

    @property
    def access(self) -> Access:
        return Access.everything() if self.admin else Access.of(self.groups)


def readable_by(groups: Sequence[str] | None) -> str:
    """An access list for people (``rag docs``, the page)."""
    if groups is None:
        return "everyone"
    return ", ".join(groups) if groups else "admins only"
