"""SMS segment counting, so an operator knows what a text notice costs and that it stays short.

A single SMS holds 160 GSM-7 septets, or 70 UCS-2 code units as soon as one character is outside the
GSM-7 alphabet (every Chinese character is). A longer message is sent as concatenated segments whose
header takes room: 153 septets or 67 code units each. A GSM-7 extension character (``€``, ``[``...)
costs two septets and a character outside the Basic Multilingual Plane (most emoji) two UTF-16 units;
neither pair is ever split across segments, which is why segments are counted by filling, not dividing.
"""

from __future__ import annotations

__all__ = ["sms_segments"]

# GSM 03.38 default alphabet (without ESC, which only introduces the extension table) and extension.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def _segments(costs: list[int], single: int, multi: int) -> int:
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > multi:  # a two-unit character moves whole to the next segment
            count, used = count + 1, 0
        used += cost
    return count


def sms_segments(text: str) -> tuple[int, str]:
    """Return ``(segments, encoding)`` for ``text``: encoding is ``"GSM-7"`` or ``"UCS-2"``.

    An empty text is ``(0, "GSM-7")``: there is nothing to send.
    """
    if not text:
        return 0, "GSM-7"
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        return _segments([2 if ch in _GSM_EXTENSION else 1 for ch in text], 160, 153), "GSM-7"
    return _segments([2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67), "UCS-2"
