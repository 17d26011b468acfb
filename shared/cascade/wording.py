"""The words the service writes itself, outside any scenario's templates: the bots' replies
(a chat bound, an opt-out confirmed), the operator's task and what a robot call says around a
step's script. Each speaks the recipient's language (ru, uk, en, kk), with times as people read
them (``1 декабря, 10:30`` in the recipient's time zone) and steps counted from 1.

Step numbers: the API's JSON counts steps from 0 (``index``, ``step``); anything a person reads
says "step 1" for index 0 (:func:`step_number`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

LOCALES = ("ru", "uk", "en", "kk")
FALLBACK = "en"

PHRASES: dict[str, dict[str, str]] = {
    # Telegram, after /start <token> bound the chat.
    "bound": {
        "ru": "Готово! Чат подключён: напоминания и уведомления будут приходить сюда.",
        "uk": "Готово! Чат підключено: нагадування та сповіщення надходитимуть сюди.",
        "en": "Done! This chat is connected: reminders and updates will come here.",
        "kk": "Дайын! Чат қосылды: еске салулар мен хабарламалар осында келеді.",
    },
    # Viber's welcome message after a binding link: a bot may write only to subscribers.
    "bound_viber": {
        "ru": "Спасибо! Чат подключён: напоминания и уведомления будут приходить сюда. "
              "Чтобы подписаться, отправьте любое сообщение.",
        "uk": "Дякуємо! Чат підключено: нагадування та сповіщення надходитимуть сюди. "
              "Щоб підписатися, надішліть будь-яке повідомлення.",
        "en": "Thank you! This chat is connected: reminders and updates will come here. "
              "Send any message to subscribe.",
        "kk": "Рахмет! Чат қосылды: еске салулар мен хабарламалар осында келеді. "
              "Жазылу үшін кез келген хабарлама жіберіңіз.",
    },
    # A STOP reply in a chat.
    "unsubscribed": {
        "ru": "Вы отписались: сообщений от нас здесь больше не будет. Чтобы вернуться, отправьте СТАРТ.",
        "uk": "Ви відписалися: повідомлень від нас тут більше не буде. Щоб повернутися, надішліть START.",
        "en": "You are unsubscribed: we will not message you here any more. To come back, send START.",
        "kk": "Сіз жазылымнан бас тарттыңыз: бұл жерге бізден хабарлама келмейді. Қайта жазылу үшін START жіберіңіз.",
    },
    # A START reply in a chat.
    "resubscribed": {
        "ru": "Вы снова подписаны: уведомления будут приходить сюда.",
        "uk": "Ви знову підписані: сповіщення надходитимуть сюди.",
        "en": "You are subscribed again: updates will come here.",
        "kk": "Сіз қайта жазылдыңыз: хабарламалар осында келеді.",
    },
    # A robot call: between the script and its repeat, when no key was pressed, after a key.
    # Not "I repeat": a script may say that itself (the OTP call reads its code twice).
    "call_repeat": {"ru": "Ещё раз.", "uk": "Ще раз.", "en": "Let me say that once more.", "kk": "Тағы бір рет."},
    "call_no_input": {
        "ru": "Мы не услышали ответа. До свидания.",
        "uk": "Ми не почули відповіді. До побачення.",
        "en": "We did not hear a key press. Goodbye.",
        "kk": "Біз жауап естімедік. Сау болыңыз.",
    },
    "call_thanks": {
        "ru": "Спасибо, ваш ответ получен. До свидания.",
        "uk": "Дякуємо, вашу відповідь отримано. До побачення.",
        "en": "Thank you, your answer has been received. Goodbye.",
        "kk": "Рахмет, жауабыңыз қабылданды. Сау болыңыз.",
    },
    # The operator's task.
    "task_title": {"ru": "Позвонить клиенту", "uk": "Зателефонувати клієнту", "en": "Call the customer",
                   "kk": "Клиентке қоңырау шалу"},
    "task_step": {"ru": "шаг {n} из {total}", "uk": "крок {n} з {total}", "en": "step {n} of {total}",
                  "kk": "{total} қадамның {n}-қадамы"},
    "task_customer": {"ru": "Клиент", "uk": "Клієнт", "en": "Customer", "kk": "Клиент"},
    "task_phone": {"ru": "Телефон", "uk": "Телефон", "en": "Phone", "kk": "Телефон"},
    "task_local_time": {"ru": "Местное время клиента", "uk": "Місцевий час клієнта",
                        "en": "Customer's local time", "kk": "Клиенттің жергілікті уақыты"},
    "task_tried": {"ru": "Что уже было", "uk": "Що вже було", "en": "Already tried", "kk": "Бұрын жасалғаны"},
    "task_step_line": {"ru": "Шаг {n}", "uk": "Крок {n}", "en": "Step {n}", "kk": "{n}-қадам"},
    "task_not_sent": {"ru": "не отправлено", "uk": "не надіслано", "en": "not sent", "kk": "жіберілмеді"},
}

CHANNELS: dict[str, dict[str, str]] = {
    "email": {"ru": "письмо", "uk": "лист", "en": "email", "kk": "хат"},
    "sms": {"ru": "SMS", "uk": "SMS", "en": "SMS", "kk": "SMS"},
    "telegram": {"ru": "Telegram", "uk": "Telegram", "en": "Telegram", "kk": "Telegram"},
    "whatsapp": {"ru": "WhatsApp", "uk": "WhatsApp", "en": "WhatsApp", "kk": "WhatsApp"},
    "viber": {"ru": "Viber", "uk": "Viber", "en": "Viber", "kk": "Viber"},
    "push": {"ru": "push-уведомление", "uk": "push-сповіщення", "en": "push notification", "kk": "push-хабарлама"},
    "voice": {"ru": "робот-звонок", "uk": "робот-дзвінок", "en": "robot call", "kk": "робот-қоңырау"},
    "operator": {"ru": "оператор", "uk": "оператор", "en": "operator", "kk": "оператор"},
}

STATUSES: dict[str, dict[str, str]] = {
    "pending": {"ru": "ожидает", "uk": "очікує", "en": "pending", "kk": "күтуде"},
    "deferred": {"ru": "отложено", "uk": "відкладено", "en": "deferred", "kk": "кейінге қалдырылды"},
    "sent": {"ru": "отправлено", "uk": "надіслано", "en": "sent", "kk": "жіберілді"},
    "delivered": {"ru": "доставлено", "uk": "доставлено", "en": "delivered", "kk": "жеткізілді"},
    "read": {"ru": "прочитано", "uk": "прочитано", "en": "read", "kk": "оқылды"},
    "clicked": {"ru": "открыта ссылка", "uk": "відкрито посилання", "en": "link opened", "kk": "сілтеме ашылды"},
    "replied": {"ru": "клиент ответил", "uk": "клієнт відповів", "en": "replied", "kk": "клиент жауап берді"},
    "confirmed": {"ru": "подтверждено", "uk": "підтверджено", "en": "confirmed", "kk": "расталды"},
    "failed": {"ru": "не доставлено", "uk": "не доставлено", "en": "failed", "kk": "жеткізілмеді"},
    "skipped": {"ru": "пропущено", "uk": "пропущено", "en": "skipped", "kk": "өткізіп жіберілді"},
    "not_sent": {"ru": "не отправлено", "uk": "не надіслано", "en": "not sent", "kk": "жіберілмеді"},
}


def pick(*candidates: str | None) -> str:
    """The first candidate locale we speak (``uk-UA`` counts as ``uk``), else English."""
    for candidate in candidates:
        language = (candidate or "").replace("_", "-").split("-")[0].lower()
        if language in LOCALES:
            return language
    return FALLBACK


def say(key: str, locale: str | None, **values: Any) -> str:
    """A phrase in the locale (or English), with ``{placeholders}`` filled."""
    text = PHRASES[key][pick(locale)]
    return text.format(**values) if values else text


def _word(table: dict[str, dict[str, str]], key: str, locale: str | None) -> str:
    return (table.get(key) or {}).get(pick(locale), key)


def channel_name(channel: str, locale: str | None) -> str:
    return _word(CHANNELS, channel, locale)


def status_name(status: str, locale: str | None) -> str:
    return _word(STATUSES, status, locale)


def step_number(index: int) -> int:
    """What a person reads for a step whose API index is ``index``: steps are counted from 1."""
    return int(index) + 1


def human_time(value: str | datetime | None, locale: str | None, timezone: str | None = None) -> str:
    """``2030-12-01T07:30:00Z`` → ``1 декабря, 12:30`` (ru, Asia/Almaty), ``December 1, 7:30 AM``
    (en, UTC): the templates' ``| when`` filter (:mod:`cascade.dates`), in the recipient's zone.
    An empty value is ""; a value that is no date is returned as it is."""
    from cascade.dates import format_moment

    if not value:
        return ""
    return format_moment(value, pick(locale), timezone or "UTC")


__all__ = ["LOCALES", "channel_name", "human_time", "pick", "say", "status_name", "step_number"]
