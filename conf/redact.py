"""Passwords written into addresses (``postgresql://user:pw@host/db``) masked for display.

A tracking URI or an API address may carry its credentials in the URL itself; the settings
dump (printed by ``harmscan settings``, logged as MLflow parameters, shown in failure notes)
and error messages show such an address with its password replaced by ``***``.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ — the password runs to the last "@" before the host part ends.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s/]*)@")


def mask_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` address in it masked.

    A user without a password, an address without credentials and any other text stay as they
    are.
    """
    return _USERINFO.sub(lambda m: f"{m['head']}{MASK}@" if m["pw"] else m[0], text)
