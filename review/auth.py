"""Who may review: a shared token (each reviewer names themself) or one user and password.

Secrets are compared in constant time. Pure: no web framework in here.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from pydantic import SecretStr

from conf.settings import ReviewSettings

NAME = re.compile(r"^[\w .@-]{1,64}$")


class LoginNotConfigured(ValueError):
    """Neither a token nor a user and password is set."""


@dataclass(frozen=True)
class Login:
    """The configured credentials.

    Attributes:
        token: The shared token, if token login is on.
        username: The one user, if user login is on.
        password: That user's password.
    """

    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    @classmethod
    def from_settings(cls, review: ReviewSettings, token: SecretStr | None = None) -> Login:
        """The login of ``review`` settings; ``token`` stands in when none is configured.

        Raises:
            LoginNotConfigured: No credentials at all.
        """
        login = cls(review.token or token, review.username, review.password)
        if login.token is None and login.username is None:
            raise LoginNotConfigured(
                "the review page needs review.token, or review.username and review.password"
            )
        return login

    @property
    def mode(self) -> str:
        """``token`` (name + token) or ``password`` (user + password)."""
        return "token" if self.token is not None else "password"

    def check(self, name: str, secret: str) -> str | None:
        """The reviewer's name if ``name``/``secret`` are accepted, else None."""
        name = name.strip()
        if not NAME.match(name):
            return None
        if self.token is not None:
            expected, ok_name = self.token.get_secret_value(), True
        else:
            expected = self.password.get_secret_value() if self.password else ""
            ok_name = bool(expected) and hmac.compare_digest(
                name.encode(), (self.username or "").encode()
            )
        ok_secret = hmac.compare_digest(secret.encode(), expected.encode())
        return name if ok_name and ok_secret else None


def new_token() -> str:
    """A random login token."""
    return secrets.token_urlsafe(24)
