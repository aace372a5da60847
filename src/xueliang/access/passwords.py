"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    return _hasher.check_needs_rehash(hashed)


def check_policy(password: str, username: str = "") -> None:
    """ValueError with the reason when ``password`` is too weak."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must have at least {MIN_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise ValueError("password must not contain the user name")
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 2:
        raise ValueError(
            "password must mix at least two of: lower case, upper case, digits, symbols"
        )
    if password.lower() in {
        "password",
        "12345678",
        "admin123",
        "123456789",
        "qwertyui",
        "11111111",
    }:
        raise ValueError("password is too common")
