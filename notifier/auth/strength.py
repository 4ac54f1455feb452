"""Start-up checks of the secrets an operator configures: a guessable signing key or a
well-known admin password would undo every other check, so `notifier serve` refuses them."""

import math
import re
from collections import Counter
from functools import cache
from importlib.resources import files

MIN_SECRET_KEY_BITS = 128
# The value .env.example shows for NOTIFIER_SECRET_KEY: copied unchanged, it is public.
SECRET_KEY_PLACEHOLDER = "change-me-run-notifier-init-env-to-generate-a-random-key"

# Digits and punctuation people wrap around a common word ("Password123!", "!admin1").
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def estimated_bits(secret: str) -> float:
    """Shannon estimate: length x entropy per character of the secret's own distribution.

    Repetition and small alphabets score low (32 x "a" scores 0); a random URL-safe key of
    43 characters or more scores well over 128 bits.
    """
    if not secret:
        return 0.0
    length = len(secret)
    per_char = -sum(n / length * math.log2(n / length) for n in Counter(secret).values())
    return length * per_char


def secret_key_problem(secret: str) -> str | None:
    """Why `secret` must not sign tokens, or None when it will do."""
    if secret == SECRET_KEY_PLACEHOLDER:
        return "is the placeholder from .env.example"
    bits = estimated_bits(secret)
    if bits < MIN_SECRET_KEY_BITS:
        return (
            f"has too little entropy (about {bits:.0f} bits, at least {MIN_SECRET_KEY_BITS} needed)"
        )
    return None


@cache
def common_passwords() -> frozenset[str]:
    text = files("notifier.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def is_common_password(password: str) -> bool:
    """On the list, whatever its case, also wrapped in digits or punctuation ("Password1!")."""
    lowered = password.lower()
    listed = common_passwords()
    return lowered in listed or _DECORATION.sub("", lowered) in listed
