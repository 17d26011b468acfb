"""Consent and opt-out per recipient, channel and purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.policy import Decision, StepContext


def check(ctx: StepContext) -> Decision | None:
    """May this step go out on its channel for its scenario's purpose?"""
    return None
