"""Channel limits, checked when a scenario is saved rather than when a customer is due a message.

Every step is rendered in every locale it has against a sample context (a recipient with every
field set, the scenario's required data and correlation, the channels tried before, the first
trigger as ``event.type``, and the timestamp a step's ``at`` names): a template that cannot
render, or a text over its channel's limit, refuses the scenario with the step and locale named.
Optional event data must be guarded in the template itself (``{% if data.x | default(none) %}``), since templates render with strict
undefined variables.

The limits (characters; links counted as the tracked links they become):

- SMS: at most the scenario's ``max_sms_parts`` parts (see :mod:`cascade.segments`); every SMS
  step's parts and characters left before the next part, per locale, are in :func:`sms_budget`
  (the save answer's ``sms``);
- Telegram 4096 and WhatsApp free text 4096 (the APIs' own limits), Viber 7000;
- WhatsApp template parameters (Cloud API): at most 1024 characters each, no newline or tab, no
  more than four spaces in a row;
- push: title (the subject) 65 and body 240, about what a lock screen shows untruncated on
  Android and iOS (the providers take 4 KB, but the rest is never read);
- voice 1000 (about a minute of speech), operator task 4000, email subject 200.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from cascade.segments import GSM7_PART, GSM7_SINGLE, UCS2_PART, UCS2_SINGLE, SmsInfo, sms_info

if TYPE_CHECKING:
    from cascade.scenarios import Scenario, Step

TEXT_LIMITS: dict[str, int] = {"telegram": 4096, "whatsapp": 4096, "viber": 7000, "push": 240, "voice": 1000,
                               "operator": 4000}
SUBJECT_LIMITS: dict[str, int] = {"email": 200, "push": 65}
WHATSAPP_PARAM_MAX = 1024
# A tracked link is https://<our API>/r/<22 characters>: counted as this many characters.
TRACKED_LINK_CHARS = 60
_TRACKED_PLACEHOLDER = "https://" + "x" * (TRACKED_LINK_CHARS - len("https://"))
_FIVE_SPACES = re.compile(r" {5,}")
# A tracked link's token: secrets.token_urlsafe(16).
LINK_TOKEN_CHARS = 22


class SmsBudget(TypedDict):
    """One SMS step in one locale, rendered against the sample context with links as sent."""

    step: int  # the step's index in ``steps`` (as in ``steps.2.template.ru``)
    locale: str
    encoding: Literal["GSM-7", "UCS-2"]
    parts: int
    chars_left: int  # characters that still fit before one more part is billed


def tracked_link(api_base: str | None = None) -> str:
    """What a tracked link looks like once sent: ``<api_base>/r/<token>``, or a ``TRACKED_LINK_CHARS``
    placeholder when the API's public address is not known (no ``PublicBaseUrl``, no request)."""
    if not api_base:
        return _TRACKED_PLACEHOLDER
    return f"{api_base.rstrip('/')}/r/" + "x" * LINK_TOKEN_CHARS


def chars_left(info: SmsInfo) -> int:
    """How many more characters (septets or UTF-16 units) fit before the text takes another part."""
    gsm = info["encoding"] == "GSM-7"
    single, per_part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    room = single if info["parts"] <= 1 else info["parts"] * per_part
    return max(room - info["characters"], 0)

_SAMPLE_NAMES = {"ru": "Анна", "uk": "Оксана", "kk": "Айгерім", "en": "Anna"}


def sample_recipient(locale: str, scenario: Scenario) -> dict[str, Any]:
    """A recipient with every field set to something plausible, speaking ``locale``."""
    return {"id": "cust-1001", "name": _SAMPLE_NAMES.get(locale, "Anna"), "locale": locale,
            "timezone": scenario.timezone, "email": "anna@example.com", "phone": "+77011234567",
            "telegram_chat_id": "123456789", "whatsapp": "+77011234567", "viber_id": "01234567890A=",
            "push_token": "fcm-token-0123456789abcdef", "consent": {"marketing": True, "transactional": True}}


def sample_value(field: str) -> str:
    """A plausible value for an event data field, guessed from its name."""
    name = field.lower()
    if name.endswith(("_url", "_link")) or name in ("url", "link"):
        return f"https://shop.example.com/{field}/100234"
    if name.endswith("_at") or name.endswith("time"):
        return "2030-11-25T10:30:00+05:00"
    if name.endswith(("_date", "deadline")) or name == "date":
        return "2030-11-25"
    if "phone" in name:
        return "+77011234567"
    if "email" in name:
        return "anna@example.com"
    if name.endswith("window"):
        return "14:00-16:00"
    if name.endswith(("_id", "code", "_number")) or name in ("id", "number"):
        return "100234"
    return f"Sample {field.replace('_', ' ')}"


def sample_data(scenario: Scenario, step: Step | None = None) -> dict[str, Any]:
    """The scenario's correlation and required data fields, each with a sample value, plus the
    timestamp a step's ``at`` names (without it the step is never sent: skipped as ``no_time``)."""
    data = {field: sample_value(field) for field in scenario.data_fields()}
    if step is not None and step.at:
        from cascade.scenarios import parse_at

        data.setdefault(parse_at(step.at)[0], "2030-11-25T10:30:00+05:00")
    return data


def sample_context(scenario: Scenario, index: int, locale: str) -> dict[str, Any]:
    """What step ``index``'s templates see, as :mod:`cascade.engine` builds it, for a sample cascade."""
    return {
        "recipient": sample_recipient(locale, scenario),
        "data": sample_data(scenario, scenario.steps[index]),
        "event": {"type": scenario.triggers[0]},
        "cascade": {"id": "c_sample", "scenario": scenario.id, "step": index,
                    "tried": [s.channel for s in scenario.steps[:index]]},
    }


def as_sent(text: str, track_links: bool, link: str = _TRACKED_PLACEHOLDER) -> str:
    """The text with every link replaced by ``link`` (what a tracked link looks like) when links
    are tracked, so lengths are counted as the customer receives them."""
    from cascade.rendering import URL

    return URL.sub(link, text) if track_links else text


def whatsapp_param_problem(value: str) -> str | None:
    """Why a rendered WhatsApp template parameter would be refused by the Cloud API, if it would."""
    if len(value) > WHATSAPP_PARAM_MAX:
        return f"is {len(value)} characters, over {WHATSAPP_PARAM_MAX}"
    if "\n" in value or "\t" in value:
        return "has a newline or a tab (not allowed in template parameters)"
    if _FIVE_SPACES.search(value):
        return "has more than 4 spaces in a row (not allowed in template parameters)"
    return None


def step_problems(scenario: Scenario, index: int, step: Step) -> list[str]:
    """What is wrong with one step, in every locale it has."""
    from cascade.rendering import render, render_string

    problems: list[str] = []
    for locale in step.template:
        where = f"steps[{index}].template.{locale}"
        context = sample_context(scenario, index, locale)
        try:
            subject, text = render(step, locale, context, scenario.timezone)
        except Exception as exc:  # any template error: syntax, undefined variable, sandbox
            problems.append(f"{where}: cannot render: {type(exc).__name__}: {exc}")
            continue
        sent = as_sent(text, scenario.track_links)
        for name in step.channels:
            # A push without a subject is titled with the scenario's name.
            title = subject or scenario.name if name == "push" else subject
            problem = text_problem(name, sent, title, scenario.max_sms_parts)
            if problem:
                problems.append(f"{where}: {problem}")
        if step.whatsapp_template is not None:
            for i, param in enumerate(step.whatsapp_template.params):
                place = f"steps[{index}].whatsapp_template.params[{i}] ({locale})"
                try:
                    value = as_sent(render_string(param, context, locale, scenario.timezone), scenario.track_links)
                except Exception as exc:
                    problems.append(f"{place}: cannot render: {type(exc).__name__}: {exc}")
                    continue
                problem = whatsapp_param_problem(value)
                if problem:
                    problems.append(f"{place}: {problem}")
    return problems


def text_problem(channel: str, text: str, subject: str | None, max_sms_parts: int) -> str | None:
    """Why ``text`` (links already as sent) does not fit ``channel``, if it does not."""
    if channel == "sms":
        info = sms_info(text)
        if info["parts"] > max_sms_parts:
            return f"SMS is {info['parts']} parts ({info['encoding']}), over max_sms_parts {max_sms_parts}"
        return None
    limit = TEXT_LIMITS.get(channel)
    if limit is not None and len(text) > limit:
        return f"{channel} text is {len(text)} characters, over {limit}"
    subject_limit = SUBJECT_LIMITS.get(channel)
    if subject_limit is not None and subject is not None and len(subject) > subject_limit:
        label = "push title" if channel == "push" else f"{channel} subject"
        return f"{label} is {len(subject)} characters, over {subject_limit}"
    return None


def problems(scenario: Scenario) -> list[str]:
    """Everything that keeps a scenario from being saved (empty: it may be saved)."""
    found: list[str] = []
    for index, step in enumerate(scenario.steps):
        found.extend(step_problems(scenario, index, step))
    return found


def sms_budget(scenario: Scenario, api_base: str | None = None) -> list[SmsBudget]:
    """Every SMS step (or step with an SMS alternative) in every locale it has: encoding, parts and
    the characters left before the next part, rendered against the sample context with links as
    the customer gets them (see :func:`tracked_link`). A step that cannot render is left out: it
    is a problem (:func:`problems`), not a budget."""
    from cascade.rendering import render

    link = tracked_link(api_base)
    budget: list[SmsBudget] = []
    for index, step in enumerate(scenario.steps):
        if "sms" not in step.channels:
            continue
        for locale in step.template:
            try:
                _, text = render(step, locale, sample_context(scenario, index, locale), scenario.timezone)
            except Exception:  # noqa: S112 - a template that cannot render is reported by problems()
                continue
            info = sms_info(as_sent(text, scenario.track_links, link))
            budget.append({"step": index, "locale": locale, "encoding": info["encoding"], "parts": info["parts"],
                           "chars_left": chars_left(info)})
    return budget


def check(scenario: Scenario) -> None:
    """Refuse a scenario whose messages would fail or be cut: ValueError naming each step and locale."""
    found = problems(scenario)
    if found:
        raise ValueError("; ".join(found))


__all__ = ["LINK_TOKEN_CHARS", "SUBJECT_LIMITS", "TEXT_LIMITS", "TRACKED_LINK_CHARS", "WHATSAPP_PARAM_MAX",
           "SmsBudget", "as_sent", "chars_left", "check", "problems", "sample_context", "sample_data",
           "sample_recipient", "sample_value", "sms_budget", "text_problem", "tracked_link", "whatsapp_param_problem"]
