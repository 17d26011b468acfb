"""Message text: templates rendered in jinja2's sandbox, then every link made trackable.

Besides jinja2's own filters, templates have ``when``, ``date`` and ``time``: an ISO 8601 value
in the reader's language and time zone (``{{ data.appointment_at | when }}`` → ``1 декабря, 10:30``;
see :mod:`cascade.dates`)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from functools import cache
from typing import Any

from cascade.dates import Part, format_moment
from cascade.scenarios import Step

# A link in message text, without the punctuation that may follow it.
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")
# Event data fields that templates render as links: checked at ingest (see link_problem).
LINK_FIELD = re.compile(r"^(url|link|.+_url|.+_link)$")


def link_problem(value: object) -> str | None:
    """Why an event's link field (``cart_url``, ``reschedule_link``) cannot go out as a link:
    only absolute http(s) URLs become tracked links, so ``javascript:`` or ``tel:`` would reach
    the customer as they are."""
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        return "must be an http(s) URL (a string)"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return "must be an http(s) URL"
    if parts.scheme.lower() not in ("http", "https"):
        return (f"must be an http(s) URL, not {parts.scheme.lower()}:" if parts.scheme
                else "must be an absolute http(s) URL (it has no scheme)")
    if not parts.hostname or URL.fullmatch(value) is None:
        return "must be an absolute http(s) URL with a host and no spaces or quotes"
    return None


# Where the date filters find the rendering's locale and the scenario's time zone.
_READER = "_reader"


def _date_filter(part: Part) -> Callable[..., str]:
    from jinja2 import Undefined, pass_context

    @pass_context
    def filter_(ctx: Any, value: Any) -> str:
        if isinstance(value, Undefined):
            return str(value)  # strict: a missing field fails as it would without the filter
        reader = ctx.get(_READER) or {}
        recipient = ctx.get("recipient") or {}
        return format_moment(value, reader.get("locale") or recipient.get("locale"), recipient.get("timezone"),
                             reader.get("timezone"), part)

    return filter_


@cache
def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.filters.update({"when": _date_filter("when"), "date": _date_filter("date"), "time": _date_filter("time")})
    return env


def _with_reader(context: dict[str, Any], locale: str | None, timezone: str | None) -> dict[str, Any]:
    return {**context, _READER: {"locale": locale, "timezone": timezone}}


def render(step: Step, locale: str, context: dict[str, Any], timezone: str | None = None) -> tuple[str | None, str]:
    """(subject, text) of a step in a locale, rendered against recipient/data/cascade. ``timezone``
    (the scenario's) shows UTC times to a recipient who has none of their own."""
    copy = step.template.get(locale) or step.template["en"]
    env = _env()
    context = _with_reader(context, locale, timezone)
    subject = env.from_string(copy.subject).render(context).strip() if copy.subject else None
    text = env.from_string(copy.text).render(context).strip()
    return subject, text


def render_string(source: str, context: dict[str, Any], locale: str | None = None, timezone: str | None = None) -> str:
    """One template string (e.g. a WhatsApp template parameter), rendered in the same sandbox."""
    return str(_env().from_string(source).render(_with_reader(context, locale, timezone))).strip()


@cache
def compile_condition(expression: str) -> Any:
    """A step's ``when`` expression, compiled in the sandbox (raises on a syntax error). A field
    the event does not carry is simply false here (``data.priority == 'vip'`` with no priority)."""
    from jinja2 import ChainableUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            # jinja2 would hand back an undefined value (false); an expression that reaches for
            # Python internals (``().__class__``) is refused outright instead.
            raise SecurityError(f"{attribute!r} (of {type(obj).__name__}) is out of the sandbox's reach")

    env = Sandbox(undefined=ChainableUndefined)
    return env.compile_expression(expression, undefined_to_none=True)


def holds(expression: str, context: dict[str, Any]) -> bool:
    """Whether a step's ``when`` is true for this cascade."""
    return bool(compile_condition(expression)(**context))


def new_link_token() -> str:
    return secrets.token_urlsafe(16)


def track_links(text: str, base_url: str, remember: Callable[[str, str], None],
                make_token: Callable[[], str] = new_link_token) -> str:
    """Replace every http(s) URL with ``<base_url>/r/<token>``; ``remember(token, url)`` stores it."""
    base = base_url.rstrip("/")

    def swap(match: re.Match[str]) -> str:
        token = make_token()
        remember(token, match.group(0))
        return f"{base}/r/{token}"

    return URL.sub(swap, text)


__all__ = ["LINK_FIELD", "URL", "compile_condition", "holds", "link_problem", "new_link_token", "render", "render_string", "track_links"]
