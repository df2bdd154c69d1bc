"""breach: an incident response playbook engine for personal-data leaks.

The package is split by idea: ``playbook`` (data model of a response), ``flow`` (running a trigger),
``clock`` (legal time arithmetic), ``deadlines``, ``assess``, ``documents``, ``store`` and ``audit``.
The CLI lives in ``engine.cli`` and imports the heavy pieces only inside the commands that need them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
