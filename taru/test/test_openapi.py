"""
Tests for L{taru.openapi}: the OpenAPI document that ships with Taru, that
it describes every route of L{TaruAPI}, and that Taru serves it.
"""

from __future__ import annotations

import json
import re

import yaml
from twisted.trial.unittest import SynchronousTestCase

import taru
from taru.api import TaruAPI
from taru.openapi import openapi_document, parse_document
from taru.test.test_api import USERS_CONFIG, APITestCase

# The methods HTTP gives every address that takes GET, and that no route
# declares: the document states them where the prose documentation does.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}

# What a route's path parameters are replaced with to ask the router where a
# documented path leads.
SAMPLE_VALUES = {"name": "greet", "run_id": "1", "file": "index.html"}

# The web interface's routes: C{/} itself, and every file below it.
WEB_INTERFACE = {"web_interface": "/", "web_interface_branch": "/{file}"}


def documented_path(rule: str) -> str:
    """
    The OpenAPI path that stands for a Klein route: C{<int:run_id>} becomes
    C{{run_id}}, and the rest of a branch route a C{{file}}.
    """
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
    return path.replace("{__rest__}", "{file}")


def operations(path_item: dict[str, object]) -> set[str]:
    """
    The methods a path of the document describes, in capitals.
    """
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {method.upper() for method in path_item if method in methods}


class DocumentTests(SynchronousTestCase):
    """
    The document is well formed, and matches the routes.
    """

    def setUp(self) -> None:
        self.document = openapi_document()
        self.paths = self.document.parsed["paths"]

    def test_json_is_the_yaml(self) -> None:
        """
        The JSON form holds exactly what the YAML file says.
        """
        self.assertEqual(
            json.loads(self.document.json), yaml.safe_load(self.document.yaml)
        )
        self.assertEqual(json.loads(self.document.json), self.document.parsed)

    def test_openapi_version(self) -> None:
        """
        It is an OpenAPI 3.1 document, versioned as Taru is.
        """
        self.assertTrue(self.document.parsed["openapi"].startswith("3.1."))
        self.assertEqual(self.document.parsed["info"]["version"], taru.__version__)

    def test_every_route_documented(self) -> None:
        """
        Every route of the API is in the document, with every method it
        takes; the web interface, which takes any method, with GET.
        """
        undocumented = []
        for rule in TaruAPI.app.url_map.iter_rules():
            path = documented_path(rule.rule)
            methods = {"GET"} if rule.methods is None else set(rule.methods)
            documented = operations(self.paths.get(path, {}))
            for method in sorted(methods - IMPLICIT_METHODS - documented):
                undocumented.append(f"{method} {path}")

        self.assertEqual(undocumented, [])

    def test_every_operation_routed(self) -> None:
        """
        Every operation of the document leads to the route it describes, not
        to the web interface that takes whatever no other route does.
        """
        router = TaruAPI.app.url_map.bind("taru.example")
        misrouted = {}
        for path, path_item in self.paths.items():
            concrete = re.sub(r"{(\w+)}", lambda m: SAMPLE_VALUES[m.group(1)], path)
            for method in operations(path_item):
                rule, _ = router.match(concrete, method=method, return_rule=True)
                if WEB_INTERFACE.get(rule.endpoint, path) != path:
                    misrouted[f"{method} {path}"] = rule.endpoint

        self.assertEqual(misrouted, {})

    def test_operation_ids_unique(self) -> None:
        """
        Each operation has an id of its own, which links refer to.
        """
        identifiers = [
            operation["operationId"]
            for path_item in self.paths.values()
            for method, operation in path_item.items()
            if method.upper() in operations(path_item)
        ]

        self.assertEqual(len(identifiers), len(set(identifiers)))
        for link in self.document.parsed["components"]["links"].values():
            self.assertIn(link["operationId"], identifiers)

    def test_references_resolve(self) -> None:
        """
        Every C{$ref} names a component the document has.
        """
        components = self.document.parsed["components"]
        references = re.findall(
            r'"\$ref": "#/components/(\w+)/([\w-]+)"', self.document.json.decode()
        )

        self.assertNotEqual(references, [])
        for kind, name in references:
            self.assertIn(name, components[kind], kind)


class ParseDocumentTests(SynchronousTestCase):
    """
    Tests for L{parse_document}.
    """

    def test_mapping(self) -> None:
        """
        A YAML mapping is kept as written and given as JSON too.
        """
        document = parse_document(b"openapi: 3.1.0\ninfo: {title: T}\n")

        self.assertEqual(document.parsed, {"openapi": "3.1.0", "info": {"title": "T"}})
        self.assertEqual(document.yaml, b"openapi: 3.1.0\ninfo: {title: T}\n")
        self.assertEqual(json.loads(document.json), document.parsed)

    def test_not_a_mapping(self) -> None:
        """
        A document that is not a mapping is refused.
        """
        self.assertRaises(ValueError, parse_document, b"- openapi\n")


class ServedDocumentTests(APITestCase):
    """
    Taru serves the document, as JSON and as YAML, to anyone.
    """

    config_text = USERS_CONFIG

    def test_json(self) -> None:
        """
        C{GET /api/v1/openapi.json} gives the document as JSON, without a
        user even where users are configured.
        """
        response = self.get("/api/v1/openapi.json")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), "application/json")
        self.assertEqual(json.loads(self.body(response)), openapi_document().parsed)

    def test_yaml(self) -> None:
        """
        C{GET /api/v1/openapi.yaml} gives the document as written.
        """
        response = self.get("/api/v1/openapi.yaml")

        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "content-type"), "application/yaml")
        self.assertEqual(self.body(response), openapi_document().yaml)

    def test_other_method(self) -> None:
        """
        The document is only read: another method gets 405.
        """
        response = self.post("/api/v1/openapi.json")

        self.error_text(response, 405)
        self.assertEqual(self.header(response, "allow"), "GET")
