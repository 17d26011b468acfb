"""``POST /v1/scenarios/{id}/preview``: every step of a scenario as one recipient would get it,
with SMS encoding, parts and the estimated cost per step, before any event is posted.

Links are shown as they are (nothing is stored, so nothing could be tracked), but SMS parts and
cost are counted on the text as it will really go out: with each link replaced by a tracked link
of this API (``<api>/r/<22 characters>``) when the scenario tracks links."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import FieldError, ValidationFailed
from cascade.models import RecipientIn
from cascade.scenarios import CONTACT_FIELD, Scenario


class PreviewIn(BaseModel):
    """A sample recipient and event data: what the scenario's event would carry."""

    model_config = ConfigDict(extra="forbid")

    recipient: RecipientIn
    data: dict[str, Any] = Field(default_factory=dict)


class SmsView(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    parts: int = Field(description="billed parts: 160/153 septets for GSM-7, 70/67 UTF-16 units for UCS-2")
    characters: int = Field(description="length in the encoding's units (septets or UTF-16 code units), "
                                        "links counted as the tracked links they become")
    chars_left: int = Field(description="characters that still fit before one more part is billed")


class PreviewStep(BaseModel):
    index: int
    channel: str = Field(description="the step's channel, or the first alternative the recipient can be reached on")
    text: str
    subject: str | None = Field(default=None, description="email subject, push title")
    sms: SmsView | None = Field(default=None, description="SMS steps only")
    cost: float = Field(description="estimated cost of this step's message (SMS: per part)")
    when: str | None = Field(default=None, description="the step's condition, if it has one")
    applies: bool = Field(description="false: the condition is false for this recipient and data, "
                                      "so the step would be skipped (at no cost)")


class PreviewView(BaseModel):
    scenario: str
    locale: str = Field(description="the locale the recipient gets (their locale, its language, the scenario's, en)")
    currency: str
    steps: list[PreviewStep]


def preview(scenario: Scenario, body: PreviewIn, api_base: str) -> PreviewView:
    """Render every step for ``body``'s recipient and data. Missing required data → 422 naming
    ``data.<field>``; a template that cannot render this data → 422 naming the step."""
    from cascade import prices
    from cascade.limits import as_sent, chars_left, tracked_link
    from cascade.planning import pick_locale
    from cascade.rendering import holds, render
    from cascade.segments import sms_info

    missing = [{"field": f"data.{name}", "message": f"required by scenario {scenario.id}"}
               for name in scenario.data_fields() if body.data.get(name) in (None, "")]
    if missing:
        raise ValidationFailed(missing)
    recipient = body.recipient.model_dump()
    locale = pick_locale(body.recipient.locale, scenario)
    link = tracked_link(api_base)
    table = prices.prices()
    steps: list[PreviewStep] = []
    for index, step in enumerate(scenario.steps):
        context = {
            "recipient": {**dict.fromkeys(RecipientIn.model_fields), **recipient},
            "data": body.data,
            "event": {"type": scenario.triggers[0]},
            "cascade": {"id": "c_preview", "scenario": scenario.id, "step": index,
                        "tried": [s.channel for s in scenario.steps[:index]]},
        }
        name = next((n for n in step.channels if recipient.get(CONTACT_FIELD[n])), step.channel)
        try:
            subject, text = render(step, locale, context, scenario.timezone)
        except Exception as exc:  # the scenario renders its sample; this data does not fit it
            raise FieldError("data", f"steps[{index}].template.{locale}: {type(exc).__name__}: {exc}") from None
        if name == "push":
            subject = subject or scenario.name  # a push without a subject is titled with the scenario's name
        sms = None
        if name == "sms":
            info = sms_info(as_sent(text, scenario.track_links, link))
            sms = SmsView.model_validate({**info, "chars_left": chars_left(info)})
        steps.append(PreviewStep(
            index=index, channel=name, text=text, subject=subject, sms=sms,
            cost=prices.cost(name, sms.parts if sms else None, table),
            when=step.when, applies=step.when is None or holds(step.when, context)))
    return PreviewView(scenario=scenario.id, locale=locale, currency=prices.currency(), steps=steps)


__all__ = ["PreviewIn", "PreviewStep", "PreviewView", "SmsView", "preview"]
