"""The error tree documented in coalesce_common/errors.py lists every CoalesceError subclass there is."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import coalesce_client
import coalesce_cloud
import coalesce_common
import coalesce_receiver
from coalesce_common import errors
from coalesce_common.errors import CoalesceError


def project_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for package in (coalesce_common, coalesce_client, coalesce_receiver, coalesce_cloud):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith("__main__") or ".migrations" in info.name:
                continue  # entry points run on import; Alembic scripts need Alembic's context
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                ):
                    found.add(value)
    return found


def test_every_coalesce_error_is_in_the_documented_tree() -> None:
    documented = set(re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))
    ours = {cls.__name__ for cls in project_exceptions() if issubclass(cls, CoalesceError)}
    assert ours - {"CoalesceError"} <= documented, sorted(ours - documented)
    assert documented <= ours, sorted(documented - ours)  # nothing listed that no longer exists


def test_only_private_control_flow_exceptions_stand_outside_the_tree() -> None:
    outside = {cls for cls in project_exceptions() if not issubclass(cls, CoalesceError)}
    assert all(cls.__name__.startswith("_") for cls in outside), sorted(c.__name__ for c in outside)
