"""Private media: where members' audio lives, how it is handed out, and to whom.

Voice tweets, voice messages, replays, uploads and work in progress live under
``SALON_PRIVATE_MEDIA_ROOT``, apart from the public files under ``MEDIA_ROOT`` (avatars), which a
proxy may serve as they are. No URL maps onto the private root: a file there goes out only
through a view that has first asked the selectors whether this member may hear it. The view then
answers with ``X-Accel-Redirect`` to the proxy's internal location for the private root
(``SALON_PRIVATE_MEDIA_ACCEL_PREFIX``; nginx sends the bytes and serves Range), or, with no
prefix set (embedded), streams the file itself.

Who is asking: the session's member, or the member an *audio link* names. The API hands out
audio links (``media_link``) so that token clients, which send no cookie, can play what it
returns: a URL signed for one file and one member, valid for
``SALON_MEDIA_LINK_MAX_AGE_SECONDS``. The link only says who is asking; the view applies that
member's access rules at request time, so hiding a tweet, a block or a suspension revokes it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from functools import wraps
from pathlib import Path
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks, signing
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET

from config.http import ranged_file_response

logger = logging.getLogger(__name__)


class PrivateMediaStorage(FileSystemStorage):
    """Files under SALON_PRIVATE_MEDIA_ROOT. They have no URL: ``url()`` refuses, so no template
    or serializer can link to one by mistake."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        setting_changed.connect(self._clear_private_location)

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.SALON_PRIVATE_MEDIA_ROOT)

    def _clear_private_location(self, setting, **kwargs):
        if setting == "SALON_PRIVATE_MEDIA_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def url(self, name):
        raise ValueError("Private media has no public URL; link to the view that serves it.")


def private_storage() -> PrivateMediaStorage:
    """The storage of every private FileField (a callable, so migrations name no path)."""
    return storages["private"]


def private_root() -> Path:
    return Path(settings.SALON_PRIVATE_MEDIA_ROOT)


def check_media_roots(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """System check: the private root must not be inside a folder the proxy publishes (MEDIA_ROOT,
    STATIC_ROOT), nor contain one."""
    private = private_root().resolve()
    errors = []
    for name in ("MEDIA_ROOT", "STATIC_ROOT"):
        public = Path(getattr(settings, name)).resolve()
        if private.is_relative_to(public) or public.is_relative_to(private):
            errors.append(
                checks.Error(
                    f"SALON_PRIVATE_MEDIA_ROOT ({private}) and {name} ({public}) overlap: the "
                    f"proxy publishes {name}, so private audio would be public.",
                    hint="Give private media a folder of its own, outside MEDIA_ROOT and "
                    "STATIC_ROOT.",
                    id="salon.E001",
                )
            )
    return errors


def private_file_response(
    request: HttpRequest, path: Path, *, content_type: str, cache_control: str
) -> HttpResponse:
    """Hand out ``path``, a file under the private root, to a member the caller has checked."""
    if not path.is_file():
        logger.warning("private file missing: %s", path)
        raise Http404("No audio here.")
    relative = path.resolve().relative_to(private_root().resolve())
    prefix = settings.SALON_PRIVATE_MEDIA_ACCEL_PREFIX
    if prefix:
        # The proxy serves the bytes (Range included) and keeps this response's headers.
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(relative.as_posix())
    else:
        response = ranged_file_response(request, path, content_type)
    response["Cache-Control"] = cache_control
    return response


# --- Audio links: private media for clients without a session ---------------------------------

_LINK_SALT = "salon.private-media.link"
_LINK_PARAMETER = "link"


class MediaLinkRefused(Exception):
    """An audio request that names nobody we let in; ``status`` is 403, or 410 once expired."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_link(request: HttpRequest, *, url_name: str, pk: int, member) -> str:
    """The absolute URL of the audio view ``url_name`` for object ``pk``, playable by ``member``
    without a session until SALON_MEDIA_LINK_MAX_AGE_SECONDS have passed."""
    token = signing.TimestampSigner(salt=_LINK_SALT).sign_object([url_name, pk, member.pk])
    url = reverse(url_name, args=[pk]) + "?" + urlencode({_LINK_PARAMETER: token})
    return request.build_absolute_uri(url)


def media_listener(request: HttpRequest, *, url_name: str, pk: int):
    """Who asks for this file: the member a valid audio link names, else the session's member.

    A link that was tampered with, is for another file, or names a member who is gone or
    suspended is refused with 403; an expired one with 410. Neither grants the file: the caller
    still asks the selectors whether the member returned may hear it.
    """
    token = request.GET.get(_LINK_PARAMETER)
    if token is None:
        if request.user.is_authenticated:
            return request.user
        raise MediaLinkRefused(403, "Sign in, or use the audio_url the API returned.")
    try:
        linked_name, linked_pk, member_pk = signing.TimestampSigner(salt=_LINK_SALT).unsign_object(
            token, max_age=settings.SALON_MEDIA_LINK_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise MediaLinkRefused(
            410, "This audio link has expired: fetch the item from the API again for a new one."
        ) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise MediaLinkRefused(403, "This audio link is not valid.") from None
    if (linked_name, linked_pk) != (url_name, pk):
        raise MediaLinkRefused(403, "This audio link is not valid.")
    member = get_user_model().objects.filter(pk=member_pk, is_active=True).first()
    if member is None:
        raise MediaLinkRefused(403, "This audio link is no longer valid.")
    return member


def private_media_view(url_name: str):
    """Decorate an audio view ``view(request, pk, *, listener)``: GET only, and ``listener`` is
    who asks (``media_listener``); a refused link gets its status and the reason as text."""

    def decorator(view):
        @require_GET
        @wraps(view)
        def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
            try:
                listener = media_listener(request, url_name=url_name, pk=pk)
            except MediaLinkRefused as refused:
                return HttpResponse(
                    refused.message, status=refused.status, content_type="text/plain; charset=utf-8"
                )
            return view(request, pk, listener=listener)

        return wrapper

    return decorator


# --- Moving files that older versions kept under MEDIA_ROOT -----------------------------------


def move_to_private_root(folders: list[str]) -> int:
    """Move ``folders`` (relative paths) from MEDIA_ROOT into the private root, keeping their
    relative paths (so stored file names stay valid); returns how many files moved.

    Idempotent, and safe to stop at any point: a file is removed from MEDIA_ROOT only once its
    copy is whole in the private root, and a run after an interrupted one finishes the job.
    """
    return _move_tree(Path(settings.MEDIA_ROOT), private_root(), folders)


def move_to_public_root(folders: list[str]) -> int:
    """The reverse of :func:`move_to_private_root`, for unapplying its migrations."""
    return _move_tree(private_root(), Path(settings.MEDIA_ROOT), folders)


def _move_tree(source_root: Path, target_root: Path, folders: list[str]) -> int:
    if source_root.resolve() == target_root.resolve():
        return 0
    moved = 0
    for folder in folders:
        source = source_root / folder
        if not source.is_dir():
            continue
        for directory, _, names in os.walk(source):
            for name in names:
                path = Path(directory) / name
                _move_file(path, target_root / path.relative_to(source_root))
                moved += 1
        for directory, _, _ in os.walk(source, topdown=False):
            with contextlib.suppress(OSError):  # not empty: something arrived meanwhile
                os.rmdir(directory)
    if moved:
        logger.info("moved %s files from %s to %s", moved, source_root, target_root)
    return moved


def _move_file(source: Path, target: Path) -> None:
    """The source is the truth: whatever is at ``target`` (a copy an earlier run left, whole or
    cut short) is replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    # Another file system: copy beside the target, then rename it into place.
    partial = target.with_name(f".{target.name}.partial")
    shutil.copy2(source, partial)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    source.unlink()
