from django import template

register = template.Library()

WAVEFORM_HEIGHT = 40


@register.filter
def waveform_bars(peaks: list[float]) -> list[dict]:
    """SVG bars for a waveform: one bar per peak, centred, at least 1 unit tall."""
    bars = []
    for index, peak in enumerate(peaks or []):
        height = max(1.0, min(1.0, float(peak)) * WAVEFORM_HEIGHT)
        bars.append({"x": index * 3, "y": (WAVEFORM_HEIGHT - height) / 2, "height": height})
    return bars


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
