from django import template

register = template.Library()

# One character per bar, its level 0..63 (static/js/waveform.js draws the bars from it).
WAVEFORM_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_TOP = len(WAVEFORM_ALPHABET) - 1


@register.filter
def waveform_code(peaks: list[float], full_scale: float = 1) -> str:
    """Peaks of 0..``full_scale`` as a compact string for ``data-peaks``: a page of cards
    renders one attribute per waveform, not markup (and number formatting) per bar."""
    scale = _TOP / float(full_scale)
    return "".join(
        WAVEFORM_ALPHABET[min(_TOP, max(0, round(peak * scale)))] for peak in peaks or ()
    )


@register.filter
def waveform_width(peaks: list[float]) -> int:
    return max(1, len(peaks or []) * 3)


@register.filter
def mmss(seconds: float | None) -> str:
    """140.2 → "2:20"."""
    if seconds is None:
        return "–:––"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
