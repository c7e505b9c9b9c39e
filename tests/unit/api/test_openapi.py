from __future__ import annotations

from starlette.routing import Route

from ondo.api.app import api_routes
from ondo.api.openapi import openapi_document
from ondo.api.openapi_ops import OPERATIONS


def test_every_route_is_declared_and_every_declaration_is_a_route() -> None:
    routed = {
        (method, route.path)
        for route in api_routes()
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert routed == set(OPERATIONS)


def test_operations_document_parameters_bodies_and_error_answers() -> None:
    paths = openapi_document(api_routes())["paths"]
    show = paths["/v1/functions/{name}"]["get"]
    names = [(p["name"], p["in"]) for p in show["parameters"]]
    assert names == [("name", "path"), ("namespace", "query")]
    assert show["security"] == [{"bearer": []}]
    assert {"200", "400", "401", "404"} <= set(show["responses"])
    error = show["responses"]["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    create = paths["/v1/rules"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert "security" not in paths["/healthz"]["get"]
    assert "Admin only" in paths["/v1/status"]["get"]["description"]
    assert "`self`" in paths["/v1/tokens"]["post"]["description"]
    assert show["x-ondo-permission"] == "read" and "403" in show["responses"]
