"""OpenAPI document details: the API-key security schemes and the value types of metadata."""

from __future__ import annotations

from typing import Any

from flask_smorest import Api

from entrypoints.schemas import Metadata
from entrypoints.settings import Settings

SCALAR: list[dict[str, Any]] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
METADATA_VALUE = {"anyOf": [*SCALAR, {"type": "array", "items": {"anyOf": SCALAR}}]}
SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "KB_API_KEYS or read-only"},
    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def spec_options(settings: Settings) -> dict[str, Any]:
    """API_SPEC_OPTIONS: with keys configured, every operation needs one (either scheme)."""
    if not (settings.admin_keys or settings.read_only_keys):
        return {}
    return {"security": [{name: []} for name in SCHEMES]}


def document_api(api: Api, settings: Settings) -> None:
    """Call before registering blueprints: the attribute function applies as schemas convert."""
    if settings.admin_keys or settings.read_only_keys:
        for name, scheme in SCHEMES.items():
            api.spec.components.security_scheme(name, scheme)
    api.ma_plugin.converter.add_attribute_function(metadata_values)


def metadata_values(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """Metadata is flat: say so, instead of documenting any JSON object as acceptable."""
    if isinstance(field, Metadata):
        return {"additionalProperties": METADATA_VALUE}
    return {}
