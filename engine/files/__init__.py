"""Every file breach reads or writes goes through here.

- :mod:`engine.files.reading`: regular files only, within a size limit (``/dev/zero`` is refused).
- :mod:`engine.files.structured`: YAML with alias, depth and expanded-size limits; JSON and TOML with
  depth limits; numbers within ±10**18; no NUL characters or lone surrogates in text.
- :mod:`engine.files.private`: files 0600 in folders 0700 whatever the umask, temporary files with
  unpredictable names created exclusively, never a symbolic link followed below a trusted root.
- :mod:`engine.files.trust`: a workspace another account can write is refused, as ssh refuses a key.
- :mod:`engine.files.limits`: the limits, settable in ``[limits]`` of settings.toml.

Refusals are :class:`~engine.errors.BadInput` (exit code 2): one line naming the file and the limit.
This package imports no database, CLI or web library, so every layer may use it.
"""

from __future__ import annotations

from engine.files.limits import DEFAULT_LIMITS, Limits, configure_limits, current_limits, limits_from_settings
from engine.files.private import (
    PrivateFolder,
    PrivateTemporary,
    append_private,
    clean_temporaries,
    make_private_dirs,
    refuse_link,
    write_private,
)
from engine.files.reading import os_error, read_bytes, read_text
from engine.files.structured import (
    MAX_INTEGER,
    check_values,
    compose_yaml,
    load_json,
    load_toml,
    load_yaml,
    yaml_scalar,
)
from engine.files.trust import UntrustedWorkspace, check_trusted

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_INTEGER",
    "Limits",
    "PrivateFolder",
    "PrivateTemporary",
    "UntrustedWorkspace",
    "append_private",
    "check_trusted",
    "check_values",
    "clean_temporaries",
    "compose_yaml",
    "configure_limits",
    "current_limits",
    "limits_from_settings",
    "load_json",
    "load_toml",
    "load_yaml",
    "make_private_dirs",
    "os_error",
    "read_bytes",
    "read_text",
    "refuse_link",
    "write_private",
    "yaml_scalar",
]
