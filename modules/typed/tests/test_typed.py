"""typed: the SDK's payload conversion and result encoding, through cmfleet's registry."""

ORDER = {
    "order_id": "o-1",
    "placed_at": "2026-11-02T09:30:00Z",
    "delivery": "2026-11-06",
    "unit_price": "2.50",
    "quantities": [1, 2, 3],
    "tags": {"priority": "high"},
}


def test_dataclass_event_is_converted_and_result_encoded(cm_invoke):
    result = cm_invoke("typed", "summarize_order", ORDER)
    assert result == {
        "order_id": "o-1",
        "total_units": 6,
        "total_price": 15.0,
        "delivery_weekday": "Friday",
        "days_to_delivery": 4,
        "tag_count": 1,
    }  # note is None, so the SDK's encoder drops it


def test_optional_field_passes_through(cm_invoke):
    result = cm_invoke("typed", "summarize_order", {**ORDER, "note": "leave at door"})
    assert result["note"] == "leave at door"


def test_typeddict_event(cm_invoke):
    reading = {"sensor": "s1", "taken_on": "2026-01-31", "values": [1.0, 3.0, 5.0], "threshold": 2.0}
    assert cm_invoke("typed", "check_reading", reading) == {"mean": 3.0, "max": 5.0, "above_threshold": 2.0}


def test_date_result_is_iso(cm_invoke):
    reading = {"sensor": "s1", "taken_on": "2026-01-31", "values": [1.0], "threshold": None}
    assert cm_invoke("typed", "next_day", reading) == "2026-02-01"


def test_bad_timestamp_fails_as_in_foundry(cm_module):
    outcome = cm_module("typed").invoke("summarize_order", {**ORDER, "placed_at": "yesterday"})
    assert not outcome.ok
    assert "yesterday" in outcome.error_message


def test_schema_declares_every_type(cm_module):
    (schema,) = [s for s in cm_module("typed").schemas() if s["functionName"] == "summarize_order"]
    types = {i["name"]: i["dataType"]["type"] for i in schema["inputs"]}
    assert types == {
        "order_id": "string",
        "placed_at": "timestamp",
        "delivery": "date",
        "unit_price": "decimal",
        "quantities": "list",
        "tags": "map",
        "note": "optionalType",
    }
    required = {i["name"]: i["required"] for i in schema["inputs"]}
    assert required["note"] is False and required["order_id"] is True
