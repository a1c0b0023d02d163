"""``/openapi.json`` in process: built from the registry's catalog, rebuilt when it changes,
free-form when the registry cannot be read, and valid OpenAPI 3.1 either way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import schemathesis
from fuzz_repo import DEFINITIONS

from parity import FeatureService
from parity.registry.catalog import Catalog
from parity.repo import load_repo
from parity.server.errors import CODES
from parity.server.openapi import OpenApiDocument, openapi_document
from repo_utils import write_repo


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = write_repo(tmp_path_factory.mktemp("doc") / "repo", {"definitions.py": DEFINITIONS})
    return Catalog.of(load_repo(root).objects, project="test")


def request_schema(doc: dict[str, Any], path: str) -> Any:
    return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_rebuilt_when_the_catalog_changes(catalog: Catalog) -> None:
    current = [catalog]
    served = OpenApiDocument(lambda: current[0])
    first = served()
    assert served() is first  # the same catalog: not rebuilt
    extra = FeatureService(name="extra_svc", features=[catalog.view("merchant_stats")[["rating"]]])
    current[0] = Catalog.of([*catalog.all(), extra], project="test")
    doc = orjson.loads(served())
    by_service = request_schema(doc, "/get-online-features")["oneOf"][1]
    assert by_service["properties"]["feature_service"]["enum"] == [
        "checkout_svc",
        "extra_svc",
        "merchant_svc",
    ]


def test_free_form_while_the_registry_is_unreadable() -> None:
    def broken() -> Catalog:
        raise OSError("registry gone")

    doc = orjson.loads(OpenApiDocument(broken)())
    assert doc == openapi_document(None)
    push = request_schema(doc, "/push")
    assert push["properties"]["push_source_name"] == {"type": "string", "minLength": 1}


@pytest.mark.parametrize("with_catalog", [True, False], ids=["repo", "free-form"])
def test_a_valid_openapi_document(with_catalog: bool, catalog: Catalog) -> None:
    doc = openapi_document(catalog if with_catalog else None)
    schema = schemathesis.openapi.from_dict(doc)  # validates the document
    ops = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert ("POST", "/push") in ops and ("GET", "/feature-views/{name}") in ops
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["properties"]["code"]["enum"]) == set(CODES)
    # every error status an operation lists is the status of some code; 202 only where a
    # job is started in the background
    statuses = set(CODES.values())
    for path, item in doc["paths"].items():
        for op in item.values():
            for status in op["responses"]:
                if status == "202":
                    assert path in ("/materialize", "/materialize-incremental"), path
                    continue
                assert status == "200" or int(status) in statuses, status


def test_types_of_the_columns(catalog: Catalog) -> None:
    doc = openapi_document(catalog)
    df = request_schema(doc, "/push")["properties"]["df"]["properties"]
    assert df["customer_id"]["items"] == {
        "type": "integer",
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
    }
    assert df["customer_id"]["minItems"] == 1
    assert df["qty"]["items"]["type"] == ["integer", "null"]
    assert df["verified"]["items"] == {"type": ["boolean", "null"]}
    assert df["event_timestamp"]["items"]["format"] == "date-time"
    assert df["event_timestamp"]["items"]["type"] == "string"  # never null
    assert df["recent_scores"]["items"]["type"] == ["array", "null"]
    materialize = request_schema(doc, "/materialize-incremental")["properties"]
    assert materialize["feature_views"]["items"]["enum"] == [
        "customer_profile",
        "customer_spend",
        "merchant_stats",
    ]
