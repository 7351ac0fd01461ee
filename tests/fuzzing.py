"""What both fuzzing modules share: the admin key, aiming cases at known data, excluded checks."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

ADMIN = "fuzz-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
KEYS = {"api_keys": ADMIN, "read_only_api_keys": "fuzz-reader-key"}
KNOWN = {"kb": "kb", "document_id": "d1"}

# An archive upload is raw bytes (its schema: a binary string), sent as the spec names it.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")


def flatmap_case(context: Any, case: Any) -> Any:
    """Half of the cases address the existing knowledge base and document instead of a 404."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return st.just(case)
    if not set(case.path_parameters or {}) & set(KNOWN):
        return st.just(case)

    def aim(use_known: bool) -> Any:
        if use_known:
            for name, value in KNOWN.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = value
        return case

    return st.booleans().map(aim)


def excluded(case: Any) -> list[Any]:
    """Checks that cannot hold here, each for a reason the schema cannot express.

    positive_data_acceptance: a schema-valid request can still be refused on purpose, with a
    4xx naming why: an opaque `cursor` that the service did not issue, a `filter` query string
    that is not JSON, a name that is taken, a limit from KB_* settings.
    allow_header_conformance on /documents/delete: that path is also the document path for a
    document whose id is "delete", so OPTIONS truthfully lists GET/PUT/PATCH/DELETE as well.
    Never `not_a_server_error`: no request, whatever its shape, may be answered with a 5xx.
    """
    checks = [positive_data_acceptance]
    if case.operation.path.endswith("/documents/delete"):
        checks.append(allow_header_conformance)
    return checks
