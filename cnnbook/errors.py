"""cnnbook's own errors, and how a notebook shows them: the message, without a traceback.

Every error cnnbook raises on purpose -- a missing data file, a setting of the wrong type, a network
that does not fit the images, a shipped checkpoint that does not fit the network -- says what is wrong
and what to do about it. In a notebook, :func:`install_compact_errors` (called on ``import cnnbook``)
shows such an error as its message alone, instead of 30 lines of cnnbook's internals; any other
error keeps its usual traceback. ``%tb`` still prints the full traceback of the last error.
"""
from __future__ import annotations


class CnnbookError(Exception):
    """Base of the errors whose message tells the reader what to fix."""


class SettingsError(CnnbookError, ValueError):
    """An argument or a setting has the wrong type or value."""


class NetworkError(CnnbookError, ValueError):
    """The network does not fit the data (input shape, number of classes, what it returns)."""


def _show_compactly(shell, etype, value, tb, tb_offset=None):  # IPython's custom exception handler
    import sys

    print(f"{etype.__name__}: {value}", file=sys.stderr)
    return None


def install_compact_errors() -> bool:
    """In IPython/Jupyter, show cnnbook's errors as their message only. Returns whether it is installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    handled = tuple(getattr(shell, "custom_exceptions", ()) or ())
    if CnnbookError not in handled:
        shell.set_custom_exc(handled + (CnnbookError,), _show_compactly)
    return True
