"""The OpenAPI 3.1 document of the HTTP ingress, derived from the request and status models."""

from __future__ import annotations

import copy
from typing import Any

from htap_sync.common.models import ReplicationRequest, TicketStatus
from htap_sync.common.settings import Settings

_REF = "#/components/schemas/{model}"
_JSON = "application/json"
TICKET_PATTERN = r"^tk_[0-9a-f]{32}$"


# GET /docs: a page that renders the document it fetches, built with DOM calls (no markup
# from the document is ever parsed) and nothing loaded from elsewhere.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"
)
DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>taurus-htap-sync ingress</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
section{border-top:1px solid #ddd;padding:.5rem 0}.m{color:#555}.k{color:#a40}
code,pre{background:#f6f6f6;padding:.1rem .3rem}pre{overflow:auto;padding:.5rem}
</style></head><body><main id="doc"><p>Loading <a href="openapi.json">openapi.json</a>...</p>
</main><script>
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};
const kind = s => !s ? "" : s.$ref ? s.$ref.split("/").pop()
  : s.oneOf ? s.oneOf.map(kind).join(" | ")
  : s.type === "array" ? "[" + kind(s.items) + "]" : s.enum ? s.enum.join(" | ") : s.type || "";
const main = document.getElementById("doc");
fetch("openapi.json").then(r => r.json()).then(doc => {
  main.replaceChildren(el("h1", doc.info.title), el("p", doc.info.description));
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = el("section");
      sec.append(el("h2", method.toUpperCase() + " " + path), el("p", op.summary));
      if (op.description) sec.append(el("p", op.description, "m"));
      if ((op.security || []).length) sec.append(el("p", "Needs a key: X-API-Key or Bearer.", "k"));
      for (const p of op.parameters || []) {
        sec.append(el("p", p.in + " " + p.name + (p.required ? " (required)" : "") + ": "
          + kind(p.schema), "m"));
      }
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) sec.append(el("p", "body: " + kind(body.schema), "m"));
      const list = el("ul");
      for (const [code, r] of Object.entries(op.responses)) {
        const media = r.content && Object.values(r.content)[0];
        const shape = media ? " -> " + kind(media.schema) : "";
        list.append(el("li", code + " " + r.description + shape));
      }
      sec.append(list);
      main.append(sec);
    }
  }
  main.append(el("h2", "Schemas"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    const d = el("details");
    d.id = name;
    d.append(el("summary", name), el("pre", JSON.stringify(schema, null, 2)));
    main.append(d);
  }
}).catch(e => main.replaceChildren(el("p", "Could not load openapi.json: " + e)));
</script></body></html>
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _model_schemas(settings: Settings) -> dict[str, Any]:
    """The models' JSON Schemas as components, their ``$defs`` hoisted beside them."""
    status = TicketStatus.model_json_schema(ref_template=_REF, mode="serialization")
    schemas: dict[str, Any] = status.pop("$defs")
    schemas["TicketStatus"] = status

    # The body of a POST: the stored request's schema, where project_id may fall back on
    # HTAP_SYNC_PROJECT_ID (absent or null) when that is set.
    new = ReplicationRequest.model_json_schema(ref_template=_REF)
    new["title"] = "NewReplication"
    new["description"] = "One creation request, as the API takes it plus where it runs."
    if settings.cloud.project_id is not None:
        new["required"] = [f for f in new["required"] if f != "project_id"]
        field = new["properties"]["project_id"]
        new["properties"]["project_id"] = {
            "anyOf": [{k: field[k] for k in ("type", "pattern")}, {"type": "null"}],
            "default": None,
            "title": field["title"],
            "description": "Defaults to the ingress's HTAP_SYNC_PROJECT_ID.",
        }
    schemas["NewReplication"] = new

    # A single accepted request answers its ticket's status plus what the submission did.
    accepted = copy.deepcopy(status)
    accepted["title"] = "Accepted"
    accepted["description"] = "The ticket of an accepted request, and what the submission did."
    accepted["properties"]["outcome"] = {
        "enum": ["queued", "duplicate", "redriven"],
        "description": "queued: new; duplicate: the same request was already in flight or"
        " done (nothing queued); redriven: a failed ticket was queued again.",
    }
    accepted["required"] = [*accepted["required"], "outcome"]
    schemas["Accepted"] = accepted
    return schemas


def _error_schemas(max_items: int) -> dict[str, Any]:
    error = {
        "type": "object",
        "additionalProperties": False,
        "required": ["field", "rule", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field (or part) at fault."},
            "rule": {"type": "string", "description": "The rule it breaks."},
            "message": {"type": "string", "description": "'field: rule', for people."},
        },
    }
    errors = {
        "type": "object",
        "additionalProperties": False,
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": _ref("Error"), "minItems": 1}},
    }
    conflict = {
        "type": "object",
        "additionalProperties": False,
        "required": ["ticket", "state", "errors"],
        "description": "A different request holds this task name and has not failed.",
        "properties": {
            "ticket": {"type": "string", "pattern": TICKET_PATTERN},
            "state": _ref("TicketState"),
            "errors": {"type": "array", "items": _ref("Error"), "minItems": 1},
        },
    }
    item = {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "status", "ticket", "errors"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "Position in the list."},
            "status": {
                "enum": ["queued", "duplicate", "redriven", "conflict", "invalid"],
                "description": "queued, duplicate and redriven are accepted; conflict and"
                " invalid were not queued.",
            },
            "ticket": {
                "anyOf": [{"type": "string", "pattern": TICKET_PATTERN}, {"type": "null"}],
                "description": "null when invalid.",
            },
            "errors": {"type": "array", "items": _ref("Error")},
        },
    }
    batch = {
        "type": "object",
        "additionalProperties": False,
        "required": ["results", "accepted", "rejected"],
        "properties": {
            "results": {
                "type": "array",
                "items": _ref("BatchItem"),
                "minItems": 1,
                "maxItems": max_items,
            },
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
        },
    }
    health = {
        "type": "object",
        "additionalProperties": False,
        "required": ["ok", "redis"],
        "properties": {"ok": {"type": "boolean"}, "redis": {"enum": ["ok", "unreachable"]}},
    }
    return {
        "Error": error,
        "Errors": errors,
        "Conflict": conflict,
        "BatchItem": item,
        "BatchResult": batch,
        "Health": health,
    }


def _response(
    description: str, schema: dict[str, Any], *headers: str, **extra: Any
) -> dict[str, Any]:
    names = ("X-Request-Id", *headers)
    return {
        "description": description,
        "headers": {n: {"$ref": f"#/components/headers/{n}"} for n in names},
        "content": {_JSON: {"schema": schema}},
        **extra,
    }


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an ingress built with these settings.

    With ``HTAP_SYNC_API_AUTH=on`` the replication routes require a key (``X-API-Key`` or
    ``Authorization: Bearer``) and may answer 401; health and this document never do.
    """
    auth = settings.ingress.auth == "on"
    limit, max_items = settings.ingress.max_body_bytes, settings.ingress.max_items
    errors = _ref("Errors")
    unavailable = _response(
        "Redis is unreachable. Nothing, or for a list only part, was queued: sending the same"
        " body again is safe (the same tickets; duplicates are not queued twice).",
        errors,
        "Retry-After",
    )
    internal = _response("An unexpected error (a bug); it is logged with its request id.", errors)
    unauthorized = _response("No API key, or one that is not accepted.", errors, "WWW-Authenticate")
    secured: dict[str, Any] = (
        {"security": [{"ApiKey": []}, {"Bearer": []}]} if auth else {"security": []}
    )
    auth_responses = {"401": unauthorized} if auth else {}

    post = {
        "operationId": "createReplications",
        "summary": "Validate and enqueue one creation request, or a list of them.",
        "description": (
            f"One object answers 202 (accepted), 409 (conflict) or 422 (invalid). A list of 1 to"
            f" {max_items} objects answers with one result per item: 202 when every item was"
            " accepted, 207 when some were; when none was, 409 if every item is a conflict,"
            " else 422. A 2xx means something was queued, a 4xx that nothing was. Bodies"
            f" above {limit} bytes answer 413."
        ),
        **secured,
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": {
                        "oneOf": [
                            _ref("NewReplication"),
                            {
                                "type": "array",
                                "items": _ref("NewReplication"),
                                "minItems": 1,
                                "maxItems": max_items,
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "202": _response(
                "Accepted: one object's ticket and status (with a Location to poll), or every"
                " item of a list accepted.",
                {"oneOf": [_ref("Accepted"), _ref("BatchResult")]},
                "Location",
                links={
                    "GetTicket": {
                        "operationId": "getReplication",
                        "parameters": {"ticket": "$response.body#/ticket"},
                    }
                },
            ),
            "207": _response("A list of which some items were accepted.", _ref("BatchResult")),
            "400": _response("The body is not valid JSON.", errors),
            **auth_responses,
            "409": _response(
                "A conflict: a different request holds the task name and has not failed (or,"
                " for a list, every item is such a conflict).",
                {"oneOf": [_ref("Conflict"), _ref("BatchResult")]},
            ),
            "413": _response(f"The body is larger than {limit} bytes.", errors),
            "415": _response("The body is not application/json.", errors),
            "422": _response(
                "Invalid: the request breaks a rule (each error names its field), the body is"
                f" neither an object nor a list of 1 to {max_items} of them, or no item of the"
                " list was accepted and some are invalid.",
                {"oneOf": [errors, _ref("BatchResult")]},
            ),
            "500": internal,
            "503": unavailable,
        },
    }
    get = {
        "operationId": "getReplication",
        "summary": "The status of a ticket.",
        **secured,
        "description": "With wait_s, the answer waits (a long poll) until the ticket is done"
        " until the milestone asked for: created (it succeeded or failed) or synced (it failed,"
        " or its task was followed to its end: syncing, failed to sync, or unknown).",
        "parameters": [
            {
                "name": "ticket",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": TICKET_PATTERN},
            },
            {
                "name": "wait_s",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": settings.ingress.max_wait_s,
                    "default": 0,
                },
            },
            {
                "name": "until",
                "in": "query",
                "required": False,
                "schema": {"enum": ["created", "synced"], "default": "created"},
            },
        ],
        "responses": {
            "200": _response(
                "The ticket's status (when waiting: once done, or when wait_s ran out).",
                _ref("TicketStatus"),
            ),
            **auth_responses,
            "404": _response("No such ticket (never submitted, or its result expired).", errors),
            "422": _response("wait_s or until is out of range (the error names which).", errors),
            "500": internal,
            "503": unavailable,
        },
    }
    health = {
        "operationId": "health",
        "summary": "Whether the ingress can reach Redis.",
        "security": [],
        "responses": {
            "200": _response("Redis answers PING.", _ref("Health")),
            "503": _response("Redis does not answer.", _ref("Health"), "Retry-After"),
        },
    }
    document = {
        "operationId": "openapi",
        "summary": "This document.",
        "security": [],
        "responses": {"200": _response("The OpenAPI document.", {"type": "object"})},
    }
    docs = {
        "operationId": "docs",
        "summary": "This document as a page to read.",
        "security": [],
        "responses": {
            "200": {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taurus-htap-sync ingress",
            "version": "1",
            "description": "Enqueue TaurusDB HTAP -> StarRocks data-synchronization tasks and"
            " poll their tickets. Every answer is JSON and carries X-Request-Id.",
        },
        "paths": {
            "/v1/replications": {"post": post},
            "/v1/replications/{ticket}": {"get": get},
            "/healthz": {"get": health},
            "/openapi.json": {"get": document},
            "/docs": {"get": docs},
        },
        "components": {
            "schemas": {**_model_schemas(settings), **_error_schemas(max_items)},
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "headers": {
                "X-Request-Id": {
                    "description": "A new id for each answer; quote it when reporting one.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                },
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
                "Location": {
                    "description": "Where to poll the ticket (one object only).",
                    "schema": {"type": "string"},
                },
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
            },
        },
    }
