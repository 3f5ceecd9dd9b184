"""What an agent is: the :class:`Agent` protocol, its health and its registration.

A plugin returns :class:`AgentSpec` values from ``hvmon_add_agents``; the daemon
builds one agent per enabled spec with ``factory()``, starts it with an
:class:`~hvmon.daemon.context.AgentContext` and supervises it (docs/plugins.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hvmon.daemon.context import AgentContext

#: what ``AgentHealth.status`` may be
STATUSES = ("ok", "degraded", "failed")

#: agent names: lower case, digits, ``-`` and ``_`` (they name config tables and loggers)
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

#: ``validate(options)`` returns one problem per bad option (empty when all is well)
Validator = Callable[[Mapping[str, Any]], Sequence[str]]


@dataclass(frozen=True)
class AgentHealth:
    """How an agent is doing: ``ok``, ``degraded`` (serving, with a problem) or ``failed``.

    ``failed`` makes the supervisor stop and restart the agent. ``listening``
    lists the addresses it serves on, as ``host:port`` (``[v6]:port``).
    """

    status: str = "ok"
    message: str = ""
    listening: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"agent health status must be one of {', '.join(STATUSES)}, "
                             f"got {self.status!r}")
        object.__setattr__(self, "listening", tuple(self.listening))


@runtime_checkable
class Agent(Protocol):
    """A long-running piece of a plugin, supervised by the daemon."""

    async def start(self, ctx: AgentContext) -> None:
        """Set up and return (may start tasks or threads); raise when it cannot start."""
        ...

    async def stop(self) -> None:
        """Stop everything :meth:`start` started; must be safe after a failed start."""
        ...

    def health(self) -> AgentHealth:
        """Current health; polled by the supervisor, must not block."""
        ...


@dataclass(frozen=True)
class AgentSpec:
    """One agent as a plugin registers it.

    ``listen`` is the default list of addresses for an agent that listens, None
    for one that only connects out (its config section then takes no
    ``listen``). ``options`` are the defaults of the agent's own keys in
    ``[agents.<name>]``: a key that is not there is unknown, and a value must
    have its default's type. ``validate`` checks the merged options.
    ``runs_without_config`` says whether an in-tree agent runs when hvmond has
    no config file (an agent that creates objects on a remote service does not).
    """

    name: str
    factory: Callable[[], Agent]
    description: str = ""
    listen: tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    validate: Validator | None = None
    runs_without_config: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ValueError(f"invalid agent name {self.name!r}: use lower case letters, "
                             "digits, '-' and '_', starting with a letter")
        if isinstance(self.listen, str):
            object.__setattr__(self, "listen", (self.listen,))
        elif self.listen is not None:
            object.__setattr__(self, "listen", tuple(self.listen))
        reserved = {"enabled", "control", "log_level", "listen"} & set(self.options)
        if reserved:
            raise ValueError(f"agent {self.name!r}: options may not redefine "
                             f"{', '.join(sorted(reserved))}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def listens(self) -> bool:
        """True for an agent that takes ``listen`` addresses."""
        return self.listen is not None
