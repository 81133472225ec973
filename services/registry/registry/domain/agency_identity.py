"""Agency identity: one id per body, and the key two spellings of one name share.

A name written with or without 肇庆/市 (肇庆市林业局, 市林业局) has the same key, so it
resolves to the same agency.
"""

from __future__ import annotations

import uuid

from registry.domain.agency_names import canonical_agency_name

# Agency ids are derived from the canonical name when an agency is first seen, so two
# registries that import the same plan agree on ids; a later rename keeps the id.
AGENCY_NAMESPACE = uuid.UUID("8f6f3c1e-5b0a-4c61-9a52-2d1f0b7e4a10")
_PREFIXES = ("肇庆市", "肇庆", "市")


def agency_id_for(name: str) -> uuid.UUID:
    """Return the id an agency gets when first created."""
    return uuid.uuid5(AGENCY_NAMESPACE, name)


def name_key(name: str) -> str:
    """The form two spellings of one name share: canonical, without a 肇庆/市 prefix."""
    canonical = canonical_agency_name(name)
    for prefix in _PREFIXES:
        if canonical.startswith(prefix) and len(canonical) > len(prefix) + 1:
            return canonical[len(prefix) :]
    return canonical
