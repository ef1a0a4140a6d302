"""How numbers are written in the report."""

from __future__ import annotations

from .common import GB


def fmt(x, nd=2):
    if x is None:
        return "—"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:.{nd}f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"
    return str(x)


def rx(x) -> str:
    """A ratio: 1.23x, or a dash when it could not be measured."""
    return "—" if x is None else f"{fmt(x)}x"


def gb(b):
    return "—" if b is None else f"{b / GB:.2f}"


def verdict(ok) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def stage(r) -> str:
    """decode / preprocess / model ms of a run that has the three stage means."""
    if r.decode_ms is None:
        return "—"
    return (f"{fmt(r.decode_ms, 0 if r.decode_ms >= 100 else 1)} / {fmt(r.preprocess_ms, 1)} / "
            f"{fmt(r.model_ms, 0 if r.model_ms >= 100 else 1)}")


def cell(r, key: str, nd=2) -> str:
    """A rate of a run, or `fails` when the run failed."""
    value = getattr(r, key, None)
    if getattr(r, "error", None) is not None and value is None:
        return "fails"
    return fmt(value, nd)
