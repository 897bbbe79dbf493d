"""Vehicle identification numbers (ISO 3779): 17 characters, digits and capitals without I, O, Q."""

import re

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
_VIN = re.compile(VIN_PATTERN)


def is_valid_vin(candidate: str) -> bool:
    """True for a well-formed VIN; the check digit is not required (only North America uses it)."""
    return _VIN.fullmatch(candidate) is not None
