"""A minimal structural check of SARIF 2.1.0: the subset of the OASIS schema (sarif-schema-2.1.0.json,
errata01) that `dfgraph check --format sarif` emits, with the schema's required properties, enums, minimums
and closed objects (additionalProperties: false), and a small validator for the JSON-Schema keywords used.

Written from the specification, not copied from it; every object below is as closed as in the schema, so a
property dfgraph adds that SARIF does not define fails here too."""

from __future__ import annotations

import re
from typing import Any

LEVELS = ["none", "note", "warning", "error"]

PROPERTY_BAG: dict[str, Any] = {
    "type": "object",
    "properties": {"tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}},
}
MESSAGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string"},
        "markdown": {"type": "string"},
        "id": {"type": "string"},
        "arguments": {"type": "array", "items": {"type": "string"}},
        "properties": PROPERTY_BAG,
    },
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
}
MULTIFORMAT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}, "properties": PROPERTY_BAG},
}
ARTIFACT_LOCATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "uri": {"type": "string", "pattern": r"^\S+$"},
        "uriBaseId": {"type": "string"},
        "index": {"type": "integer", "minimum": -1},
        "description": MESSAGE,
        "properties": PROPERTY_BAG,
    },
}
REGION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "startLine": {"type": "integer", "minimum": 1},
        "startColumn": {"type": "integer", "minimum": 1},
        "endLine": {"type": "integer", "minimum": 1},
        "endColumn": {"type": "integer", "minimum": 1},
        "charOffset": {"type": "integer", "minimum": -1},
        "charLength": {"type": "integer", "minimum": 0},
        "message": MESSAGE,
        "properties": PROPERTY_BAG,
    },
    "anyOf": [{"required": ["startLine"]}, {"required": ["charOffset"]}, {"required": ["byteOffset"]}],
}
LOCATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": -1},
        "physicalLocation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "artifactLocation": ARTIFACT_LOCATION,
                "region": REGION,
                "contextRegion": REGION,
                "properties": PROPERTY_BAG,
            },
            "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
        },
        "logicalLocations": {
            "type": "array",
            "uniqueItems": True,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "index": {"type": "integer", "minimum": -1},
                    "fullyQualifiedName": {"type": "string"},
                    "decoratedName": {"type": "string"},
                    "parentIndex": {"type": "integer", "minimum": -1},
                    "kind": {"type": "string"},
                    "properties": PROPERTY_BAG,
                },
            },
        },
        "message": MESSAGE,
        "properties": PROPERTY_BAG,
    },
}
REPORTING_DESCRIPTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "shortDescription": MULTIFORMAT,
        "fullDescription": MULTIFORMAT,
        "help": MULTIFORMAT,
        "helpUri": {"type": "string"},
        "defaultConfiguration": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "level": {"enum": LEVELS},
                "rank": {"type": "number", "minimum": -1},
                "properties": PROPERTY_BAG,
            },
        },
        "properties": PROPERTY_BAG,
    },
}
RESULT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["message"],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleIndex": {"type": "integer", "minimum": -1},
        "kind": {"enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]},
        "level": {"enum": LEVELS},
        "message": MESSAGE,
        "locations": {"type": "array", "items": LOCATION},
        "suppressions": {
            "type": "array",
            "uniqueItems": True,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["inSource", "external"]},
                    "status": {"enum": ["accepted", "underReview", "rejected"]},
                    "justification": {"type": "string"},
                    "location": LOCATION,
                    "guid": {"type": "string"},
                    "properties": PROPERTY_BAG,
                },
            },
        },
        "properties": PROPERTY_BAG,
    },
}
SARIF_2_1_0: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "fullName": {"type": "string"},
                                    "version": {"type": "string"},
                                    "semanticVersion": {"type": "string"},
                                    "informationUri": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "uniqueItems": True,
                                        "items": REPORTING_DESCRIPTOR,
                                    },
                                    "properties": PROPERTY_BAG,
                                },
                            },
                            "properties": PROPERTY_BAG,
                        },
                    },
                    "originalUriBaseIds": {"type": "object", "additionalProperties": ARTIFACT_LOCATION},
                    "invocations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["executionSuccessful"],
                            "properties": {
                                "executionSuccessful": {"type": "boolean"},
                                "exitCode": {"type": "integer"},
                                "arguments": {"type": "array", "items": {"type": "string"}},
                                "commandLine": {"type": "string"},
                                "properties": PROPERTY_BAG,
                            },
                        },
                    },
                    "results": {"type": ["array", "null"], "items": RESULT},
                    "properties": PROPERTY_BAG,
                },
            },
        },
        "properties": PROPERTY_BAG,
    },
}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": int | float,
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False  # JSON true is not a number
    return isinstance(value, _TYPES[name])


def errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every violation of `schema` by `value` (JSON-Schema keywords: type, enum, required, properties,
    additionalProperties, items, uniqueItems, minimum, pattern, anyOf), as 'path: problem'."""
    found: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, n) for n in names):
            return [f"{where}: {value!r} is not of type {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{where}: {value!r} is less than {schema['minimum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        found.extend(f"{where}: {k!r} is required" for k in schema.get("required", ()) if k not in value)
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                found.extend(errors(item, props[key], f"{where}.{key}"))
            elif extra is False:
                found.append(f"{where}: property {key!r} is not allowed")
            elif isinstance(extra, dict):
                found.extend(errors(item, extra, f"{where}.{key}"))
    if isinstance(value, list):
        if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
            found.append(f"{where}: items are not unique")
        if "items" in schema:
            for index, item in enumerate(value):
                found.extend(errors(item, schema["items"], f"{where}[{index}]"))
    if "anyOf" in schema and all(errors(value, option, where) for option in schema["anyOf"]):
        found.append(f"{where}: matches none of {schema['anyOf']}")
    return found
