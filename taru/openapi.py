"""
Taru's OpenAPI document: the description of the whole HTTP API, kept as
C{openapi.yaml} beside this module and installed with the package, and the
JSON form of it that Taru serves beside the YAML.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from attrs import frozen

# The document's file, in the package.
DOCUMENT_NAME = "openapi.yaml"


@frozen
class OpenAPIDocument:
    """
    The OpenAPI document, ready to serve.

    @ivar parsed: the document as JSON values.
    @ivar yaml: the document as written, in YAML.
    @ivar json: the same document as JSON.
    """

    parsed: dict[str, Any]
    yaml: bytes
    json: bytes


def parse_document(text: bytes) -> OpenAPIDocument:
    """
    Read an OpenAPI document written in YAML.

    @raise ValueError: the text is not a YAML mapping.
    @raise TypeError: it holds values that JSON cannot, such as dates.
    """
    parsed = yaml.safe_load(text)
    if not isinstance(parsed, dict):
        raise ValueError("an OpenAPI document must be a mapping")
    return OpenAPIDocument(
        parsed=parsed, yaml=text, json=json.dumps(parsed).encode("utf-8")
    )


@cache
def openapi_document() -> OpenAPIDocument:
    """
    Taru's own OpenAPI document, read from the package once.
    """
    return parse_document(files("taru").joinpath(DOCUMENT_NAME).read_bytes())
