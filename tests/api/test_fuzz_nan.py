"""Every route that takes a JSON body, fed what JSON parsers let through but the API must refuse: ``NaN``,
``Infinity``, numbers beyond a double, huge integers, lone surrogates, ``true`` for numbers, in every field of
its schema (and of the objects in its lists). Before issue 16, 344 of 2,270 such requests answered 500 and the
connection often dropped; here every answer must be below 500 and a refusal must carry a readable message.
"""

from __future__ import annotations

import json

from fastapi.routing import APIRoute

from echosclero.clinic.roles import can

RAW = ["NaN", "Infinity", "-Infinity", "1e999", "1" * 400, '"\\ud800"', "true"]
ROLES = ("physician", "front_desk", "admin")


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _bodies(schema: dict, components: dict) -> list[str]:
    """JSON texts: each raw value at the top, and in each property (and in each property of list items)."""
    schema = _resolve(schema, components)
    out = list(RAW)
    props = schema.get("properties", {})
    for name, sub in props.items():
        for raw in RAW:
            out.append(f'{{"{name}": {raw}}}')
        sub = _resolve(sub, components)
        items = sub.get("items")
        if sub.get("type") == "array" and items:
            item = _resolve(items, components)
            for inner in item.get("properties", {}):
                for raw in ("NaN", '"\\ud800"', "1e999"):
                    out.append(f'{{"{name}": [{{"{inner}": {raw}}}]}}')
    return out


def _permission(route: APIRoute):
    perms = [getattr(d.call, "permission", "absent") for d in route.dependant.dependencies]
    return next((p for p in perms if p != "absent"), None)


def test_no_server_error_for_any_body(app, client, make, auth):
    p = make.ready_patient()
    s = make.session(p["id"])
    make.injection(s["id"])
    ids = {"patient_id": p["id"], "session_id": s["id"]}
    doc = app.openapi()
    components = doc["components"]["schemas"]
    routes = {}
    for r in app.routes:
        if isinstance(r, APIRoute):
            for m in r.methods:
                routes[(m, r.path)] = _permission(r)
    sent, errors, unreadable = 0, [], []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            perm = routes.get((method.upper(), path))
            role = next((r for r in ROLES if perm is None or can(r, perm)), "physician")
            url = path
            for name in ("patient_id", "session_id", "followup_id", "complication_id", "appointment_id", "plan_id"):
                url = url.replace("{" + name + "}", str(ids.get(name, 1)))
            url = url.replace("{user_id}", "1").replace("{request_id}", "1").replace("{code}", "FOAM_SESSION_MAX_ML")
            url = url.replace("{key}", "aftercare").replace("{exam_id}", "1")
            headers = {"Content-Type": "application/json"} | auth(role)
            for body in _bodies(content["application/json"]["schema"], components):
                r = client.request(method.upper(), url, content=body.encode("utf-8"), headers=headers)
                sent += 1
                if r.status_code >= 500:
                    errors.append(f"{method.upper()} {url} {body[:80]} -> {r.status_code}")
                elif r.status_code == 422:
                    try:
                        msg = r.json()["message"]
                        json.dumps(msg, ensure_ascii=False).encode("utf-8")
                    except (ValueError, KeyError, UnicodeEncodeError):
                        unreadable.append(f"{method.upper()} {url} {body[:80]}")
    assert sent > 1000, sent
    assert not errors, f"{len(errors)} of {sent} requests failed with 5xx:\n" + "\n".join(errors[:30])
    assert not unreadable, "422 without a readable message:\n" + "\n".join(unreadable[:30])
