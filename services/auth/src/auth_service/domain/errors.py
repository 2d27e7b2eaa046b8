"""The auth service's errors, free of HTTP; api/errors.py maps them to problem+json.

Exception
 └── AuthError
      ├── EmailTaken                 an account with this email (any letter case) exists
      ├── InvalidCredentials         wrong email or password (never says which)
      ├── TooManyFailedLogins        the account or client is locked out for a while
      ├── RefreshTokenRejected       unknown, expired, revoked or spent refresh token
      │    └── RefreshTokenReused     a spent token came back: its family is revoked
      ├── AccountUnavailable         the caller's account is deleted or disabled
      ├── WrongPassword              the current password given to confirm a change is wrong
      ├── UserNotFound               no live user with this id
      ├── InvalidCursor              a pagination cursor we did not issue
      ├── ChangeNotAllowed           e.g. an admin disabling or demoting themselves
      ├── SigningKeyUnavailable      no signing key could be loaded
      └── HashingBusy                more password hashing is queued than clears in ~1 s
"""

from __future__ import annotations

__all__ = [
    "AccountUnavailable",
    "AuthError",
    "ChangeNotAllowed",
    "EmailTaken",
    "HashingBusy",
    "InvalidCredentials",
    "InvalidCursor",
    "RefreshTokenRejected",
    "RefreshTokenReused",
    "SigningKeyUnavailable",
    "TooManyFailedLogins",
    "UserNotFound",
    "WrongPassword",
]


class AuthError(Exception):
    pass


class EmailTaken(AuthError):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists")


class InvalidCredentials(AuthError):
    def __init__(self) -> None:
        super().__init__("Invalid email or password")


class TooManyFailedLogins(AuthError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed logins; try again later")
        self.retry_after = max(1, retry_after)


class RefreshTokenRejected(AuthError):
    def __init__(self, detail: str = "Refresh token is invalid or expired") -> None:
        super().__init__(detail)


class RefreshTokenReused(RefreshTokenRejected):
    def __init__(self) -> None:
        super().__init__("Refresh token was already used; every session of that login is revoked")


class AccountUnavailable(AuthError):
    def __init__(self, detail: str = "This account is disabled or no longer exists") -> None:
        super().__init__(detail)


class WrongPassword(AuthError):
    def __init__(self) -> None:
        super().__init__("The current password is not correct")


class UserNotFound(AuthError):
    def __init__(self) -> None:
        super().__init__("No such user")


class InvalidCursor(AuthError):
    def __init__(self) -> None:
        super().__init__("Invalid pagination cursor")


class ChangeNotAllowed(AuthError):
    pass


class SigningKeyUnavailable(AuthError):
    def __init__(self) -> None:
        super().__init__("No signing key is available yet; retry shortly")


class HashingBusy(AuthError):
    """Login, register or a password change arrived while the Argon2 queue was full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many logins and registrations at once; retry after a moment")
        self.retry_after = max(1, retry_after)
