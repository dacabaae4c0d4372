"""Typed events: dataclass and TypedDict payloads with date, datetime, Decimal, list, dict and Optional."""

import datetime
import decimal
from dataclasses import dataclass
from typing import TypedDict

from compute_modules.annotations import function


@dataclass
class Order:
    order_id: str
    placed_at: datetime.datetime
    delivery: datetime.date
    unit_price: decimal.Decimal
    quantities: list[int]
    tags: dict[str, str]
    note: str | None = None


@dataclass
class OrderSummary:
    order_id: str
    total_units: int
    total_price: float
    delivery_weekday: str
    days_to_delivery: int
    tag_count: int
    note: str | None = None


class Reading(TypedDict):
    sensor: str
    taken_on: datetime.date
    values: list[float]
    threshold: float | None


@function
def summarize_order(context, event: Order) -> OrderSummary:
    """Totals of an order; the SDK converts every field of the JSON event to its declared type."""
    units = sum(event.quantities)
    return OrderSummary(
        order_id=event.order_id,
        total_units=units,
        total_price=float(event.unit_price * units),
        delivery_weekday=event.delivery.strftime("%A"),
        days_to_delivery=(event.delivery - event.placed_at.date()).days,
        tag_count=len(event.tags),
        note=event.note,
    )


@function
def check_reading(context, event: Reading) -> dict[str, float]:
    """Mean and maximum of a TypedDict reading, and how many values pass its optional threshold."""
    values = event["values"]
    threshold = event["threshold"]
    above = sum(1 for v in values if threshold is not None and v > threshold)
    return {"mean": sum(values) / len(values), "max": max(values), "above_threshold": float(above)}


@function
def next_day(context, event: Reading) -> datetime.date:
    """The day after the reading, returned as a date (the SDK sends it as YYYY-MM-DD)."""
    return event["taken_on"] + datetime.timedelta(days=1)
