"""The SDK's function schemas as JSON Schema, for form generation and event validation."""

from __future__ import annotations

from typing import Any

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"  # the SDK's two strptime formats
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"

_SIMPLE: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "long": {"type": "integer"},
    "short": {"type": "integer", "minimum": -32768, "maximum": 32767},
    "byte": {"type": "integer", "minimum": -128, "maximum": 127},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "binary": {"type": "string", "description": "UTF-8 text (the SDK does bytes(value, 'utf8'))"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
    "decimal": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": DECIMAL_PATTERN}]},
    "ontologyEdit": {},
}


def data_type_schema(data_type: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema for one SDK ``dataType`` (a tagged union ``{"type": tag, tag: {...}}``)."""
    tag = data_type.get("type")
    body = data_type.get(tag, {}) if isinstance(tag, str) else {}
    if tag in _SIMPLE:
        return dict(_SIMPLE[tag])
    if tag in ("list", "set"):
        schema: dict[str, Any] = {"type": "array", "items": data_type_schema(body["elementsType"])}
        if tag == "set":
            schema["uniqueItems"] = True
        return schema
    if tag == "map":
        return {"type": "object", "additionalProperties": data_type_schema(body["valuesType"])}
    if tag == "optionalType":
        return {"anyOf": [data_type_schema(body["wrappedType"]), {"type": "null"}]}
    if tag == "anonymousCustomType":
        fields = body.get("fields", {})
        return {"type": "object", "properties": {k: data_type_schema(v) for k, v in fields.items()}}
    return {}


def input_schema(function_schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a function's event (the ``query`` object); an untyped event accepts any JSON."""
    inputs = function_schema.get("inputs", [])
    if not inputs:
        return {}
    return {
        "type": "object",
        "properties": {i["name"]: data_type_schema(i["dataType"]) for i in inputs},
        "required": [i["name"] for i in inputs if i.get("required")],
    }


def output_schema(function_schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a function's result."""
    output = function_schema.get("output", {})
    single = output.get("single", {}) if isinstance(output, dict) else {}
    return data_type_schema(single.get("dataType", {})) if single else {}


def to_json_schema(function_schema: dict[str, Any]) -> dict[str, Any]:
    """``{"input": ..., "output": ...}`` JSON Schemas (draft 2020-12) of one SDK function schema."""
    name = function_schema.get("functionName", "")
    return {
        "functionName": name,
        "input": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{name} event",
            **input_schema(function_schema),
        },
        "output": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{name} result",
            **output_schema(function_schema),
        },
    }


def validation_errors(function_schema: dict[str, Any], event: Any) -> list[dict[str, str]]:
    """Each problem of ``event`` against the function's input schema, with its JSON path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        input_schema(function_schema), format_checker=jsonschema.FormatChecker()
    )
    out = []
    for err in sorted(validator.iter_errors(event), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else ""
            path = f"{path}.{missing}" if missing else path
        out.append({"path": path, "message": err.message})
    return out
