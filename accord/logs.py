"""Logging set-up from ACCORD_LOG / RUST_LOG filter directives (D19).

`accord=debug,hypercorn=info`: each `target=level` sets a logger's level; a bare level sets the
root. The original's targets are mapped: `accordserver` -> `accord`, `tower_http` -> the access
log `accord.http.access`.
"""

from __future__ import annotations

import logging
import sys

_ALIASES = {"accordserver": "accord", "tower_http": "accord.http.access"}
_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}


def configure_logging(filter_spec: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("accord").setLevel(logging.INFO)
    for directive in filter_spec.split(","):
        directive = directive.strip()
        if not directive:
            continue
        if "=" in directive:
            target, level = directive.rsplit("=", 1)
            name = _ALIASES.get(target.strip(), target.strip())
            logging.getLogger(name).setLevel(_LEVELS[level.strip().lower()])
        else:
            root.setLevel(_LEVELS[directive.lower()])
