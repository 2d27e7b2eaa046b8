"""Request and response bodies: strict, unknown fields refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auth_service.domain.model import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    Role,
    User,
    normalise_email,
)

__all__ = [
    "LoginRequest",
    "LogoutRequest",
    "PasswordChange",
    "PasswordConfirmation",
    "RefreshRequest",
    "RegisterRequest",
    "TokenResponse",
    "UserChange",
    "UserOut",
    "UsersPage",
]

# Strict: a JSON object or number where a string belongs ({"$gt": ""}) is a 422, never coerced.
_STRICT = ConfigDict(extra="forbid", strict=True)
Email = Annotated[str, Field(min_length=3, max_length=320)]
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=256)]


class RegisterRequest(BaseModel):
    model_config = _STRICT

    email: Email
    password: Password
    display_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        try:
            # Syntax only: a DNS lookup per registration would be slow and leak timing.
            checked = validate_email(value.strip(), check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid email address: {exc}") from None
        return normalise_email(checked.normalized)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("display_name must be printable text")
        return value


class LoginRequest(BaseModel):
    model_config = _STRICT

    email: Email
    # No minimum here: a short password is simply wrong, the same 401 as any other.
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]


class RefreshRequest(BaseModel):
    model_config = _STRICT

    refresh_token: OpaqueToken


class LogoutRequest(RefreshRequest):
    pass


class PasswordChange(BaseModel):
    model_config = _STRICT

    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
    new_password: Password


class PasswordConfirmation(BaseModel):
    model_config = _STRICT

    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str | None
    role: Role
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
        )


class UsersPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class UserChange(BaseModel):
    model_config = _STRICT

    role: Role | None = None
    disabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.role is None and self.disabled is None:
            raise ValueError("give role, disabled or both")
        return self
