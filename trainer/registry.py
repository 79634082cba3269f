"""Registries: plain dicts filled by a ``register`` decorator, whose errors list the known names."""

from __future__ import annotations


class UnknownName(KeyError, ValueError):
    """A name that is not in a registry; the message lists the accepted ones."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(dict):
    """A dict from name to thing (target, schedule, preset, space ...).

    ``@REG.register("name")`` adds a function; ``REG["name"]`` for an unknown
    name raises :class:`UnknownName` naming the valid choices. The CLI's
    ``choices`` come from ``list(REG)``.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str):
        def deco(obj):
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = obj
            return obj

        return deco

    def __missing__(self, name):
        raise UnknownName(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self)}")
