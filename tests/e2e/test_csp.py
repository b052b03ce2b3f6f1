"""Every page and every live feature under the Content-Security-Policy, in real Chromium.

One browser context per role (host with a fake microphone, listener, visitor) walks the pages
of config/urls.py and the apps' urls.py and uses the live features. Each context records every
``securitypolicyviolation`` event and every console message about the policy, and every
document response; none may be refused anything, and every document must carry the header.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.db import connection

from accounts.models import Follow
from tests.e2e.test_space_audio import open_space, tone_wav, wait_until_heard
from tests.spaces.factories import make_live_space, make_member, make_replay
from tests.voicetweets.factories import ready_message, ready_tweet

# Runs before any script of every page (and frame) of the context. Violations are reported to
# Python at once (an exposed binding), so none is lost when the page navigates away right after.
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const violation = {
    page: location.href,
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: `${event.sourceFile}:${event.lineNumber}`,
    sample: event.sample,
  };
  window.salonReportCspViolation(violation);
});
"""


class PolicyWatch:
    """What the policy refused in one browser context, and the documents it was sent with."""

    def __init__(self, context):
        self.violations: list[dict] = []
        self.console: list[str] = []
        self.documents: list = []
        context.expose_binding(
            "salonReportCspViolation", lambda _source, violation: self.violations.append(violation)
        )
        context.add_init_script(VIOLATION_LISTENER)
        context.on("console", self._console)
        context.on("response", self._response)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(f"{message.location.get('url')}: {message.text}")

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.documents.append(response)

    def policies(self) -> dict[str, str | None]:
        """Each document's URL and status, with its Content-Security-Policy header."""
        return {
            f"{response.status} {response.url}": response.all_headers().get(
                "content-security-policy"
            )
            for response in self.documents
        }

    def assert_clean(self) -> None:
        assert self.violations == [], self.violations
        assert self.console == [], self.console
        policies = self.policies()
        assert policies, "no document was loaded"
        unprotected = [page for page, policy in policies.items() if not policy]
        assert unprotected == [], f"documents without a Content-Security-Policy: {unprotected}"
        for page, policy in policies.items():
            script_src = directive(policy, "script-src")
            assert script_src == ["'self'"], (page, policy)


def directive(policy: str, name: str) -> list[str] | None:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return None


def test_every_page_and_live_feature_runs_under_the_policy(
    live_server_process, launch_browser, signed_in_context, tmp_path
):
    """Host, listener and visitor use every page and live feature; the policy refuses nothing
    and every document carries it."""
    host = make_member("hana", host=True)
    host.display_name = "Hana Host"
    host.is_staff = host.is_superuser = True
    host.save()
    listener = make_member("leo")
    Follow.objects.create(follower=host, followee=listener)
    Follow.objects.create(follower=listener, followee=host)

    # Ending a space broadcasts through async_to_sync, which refuses to run beside
    # Playwright's loop: build the replay on a thread of its own.
    def build_replay():
        try:
            return make_replay(host, seconds=2)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(build_replay).result()
    tweet = ready_tweet(host, text="A thought under the policy")
    message = ready_message(listener, host)
    live = make_live_space(host, title="Policy check")
    server = live_server_process()

    host_context = signed_in_context(
        launch_browser(fake_audio=tone_wav(tmp_path / "tone.wav", 440)), server=server, user=host
    )
    host_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    listener_browser = launch_browser()
    listener_context = signed_in_context(listener_browser, server=server, user=listener)
    visitor_context = listener_browser.new_context(base_url=server.url)
    visitor_context.set_default_timeout(15_000)
    # Before any page opens: the watch's script must run ahead of every page's own.
    watches = {
        "host": PolicyWatch(host_context),
        "listener": PolicyWatch(listener_context),
        "visitor": PolicyWatch(visitor_context),
    }
    try:
        page = host_context.new_page()
        record_post_and_play_a_voice_tweet(page)
        for path in ["/spaces/", "/spaces/new/", f"/voicetweets/{tweet.pk}/"]:
            page.goto(path)
        invitation_url = create_and_copy_an_invitation(page)
        use_the_admin(page, space=live, member=listener)
        use_swagger_ui(page)

        host_space, listener_space = join_a_live_space(host_context, listener_context, live)

        page = listener_context.new_page()
        play_the_replay(page, replay)
        for path in [
            "/",
            f"/spaces/{replay.space_id}/",
            "/u/hana/",
            "/u/hana/followers/",
            "/u/hana/following/",
            "/settings/profile/",
            "/messages/",
            "/messages/hana/",
            f"/voicemessages/{message.pk}/card",
            f"/voicetweets/{tweet.pk}/card",
            f"/report/voicetweet/{tweet.pk}/",
            "/invitations/",
            "/accounts/password/change/",
            "/accounts/email/",
        ]:
            page.goto(path)

        page = visitor_context.new_page()
        for path in ["/", "/accounts/login/", "/accounts/signup/"]:
            page.goto(path)
        reset_a_password(page, listener)
        hit_the_waitlist_rate_limit_and_go_back(page)
        send_a_form_without_its_csrf_cookie(page, visitor_context)
        sign_up_through_the_invitation_and_log_out(page, invitation_url)
        # Not-found is Django's own page only with DEBUG off: DEBUG's error pages have inline
        # styles, so django-csp leaves them (and only them) without the policy.
        production_like = live_server_process(DJANGO_DEBUG="0")
        assert page.goto(f"{production_like.url}/no-such-page/").status == 404

        # The live pages stayed in the space throughout: nothing was refused there either.
        assert "You are in the space." in listener_space.content()
        assert host_space.get_by_role("button", name="Let leo speak").is_visible()
        for watch in watches.values():
            watch.assert_clean()
    finally:
        for role, watch in watches.items():
            print(role, "violations:", watch.violations, "console:", watch.console)


def record_post_and_play_a_voice_tweet(page) -> None:
    """Record 2 s from the fake microphone on the home page, post it, and play it once ready."""
    page.goto("/")
    page.get_by_label("Say something").fill("recorded under the policy")
    page.get_by_role("button", name="Record", exact=True).click()
    page.get_by_text("Recording…").wait_for()
    page.wait_for_function("() => document.querySelector('.composer .timer').textContent == '0:02'")
    page.get_by_role("button", name="Stop recording").click()
    page.get_by_text("Recorded 0:02").wait_for()  # with its preview, from a blob: URL
    page.get_by_role("button", name="Post").click()
    card = page.locator(
        "article.voicetweet[data-state=ready]", has_text="recorded under the policy"
    )
    card.wait_for(timeout=30_000)
    card.get_by_role("button", name="Play voice tweet by Hana Host").click()
    page.wait_for_function(
        "el => Number(el.getAttribute('aria-valuenow')) >= 1",
        arg=card.get_by_role("slider", name="Seek").element_handle(),
    )


def create_and_copy_an_invitation(page) -> str:
    """Create an invitation; its link field selects itself and "Copy link" copies it (the
    page's own script). Returns the link."""
    page.goto("/invitations/")
    page.get_by_role("button", name="Create an invitation").click()
    link = page.get_by_label("Invitation link")
    link.click()
    page.wait_for_function(
        "el => el.selectionStart === 0 && el.selectionEnd === el.value.length",
        arg=link.element_handle(),
    )
    page.get_by_role("button", name="Copy link").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link.input_value()
    return link.input_value()


def use_the_admin(page, *, space, member) -> None:
    """The index, a changelist with a date hierarchy, change forms with inlines, a raw-id field
    and date widgets, whose calendar the admin's scripts build."""
    for path in [
        "/admin/",
        "/admin/accounts/auditentry/",
        "/admin/spaces/space/",
        f"/admin/spaces/space/{space.pk}/change/",
        f"/admin/accounts/user/{member.pk}/change/",
    ]:
        page.goto(path)
    page.locator(".datetimeshortcuts a", has_text="Today").first.click()
    page.locator("#calendarlink0").click()
    page.locator("#calendarbox0").wait_for()


def use_swagger_ui(page) -> None:
    """Swagger UI renders the schema, and an operation expands."""
    page.goto("/api/docs/")
    operation = page.locator(".opblock").first
    operation.wait_for()
    operation.locator(".opblock-summary").click()
    operation.locator(".opblock-body").wait_for()


def join_a_live_space(host_context, listener_context, space):
    """The host talks (440 Hz), the listener hears it, raises a hand and reacts."""
    host_space = open_space(host_context, space)
    host_space.get_by_role("button", name="Unmute your microphone").click()
    listener_space = open_space(listener_context, space)
    wait_until_heard(listener_space, 440)
    listener_space.get_by_role("button", name="Raise hand").click()
    host_space.get_by_role("button", name="Let leo speak").wait_for()
    listener_space.get_by_role("group", name="Reactions").get_by_role("button").first.click()
    host_space.locator(".reaction-bubble").first.wait_for()
    return host_space, listener_space


def play_the_replay(page, replay) -> None:
    page.goto(f"/spaces/{replay.space_id}/replay/")
    page.get_by_role("button", name="Play from 0:00").click()
    page.wait_for_function("() => document.querySelector('audio').currentTime > 0.2")


def reset_a_password(page, member) -> None:
    """allauth's reset form and its done page, and the set-password page of a reset link."""
    page.goto(
        f"/accounts/password/reset/key/{user_pk_to_url_str(member)}-"
        f"{default_token_generator.make_token(member)}/"
    )
    page.get_by_label("New Password (again)").wait_for()
    page.goto("/accounts/password/reset/")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_role("button", name="Reset My Password").click()
    page.wait_for_url("**/password/reset/done/")


def hit_the_waitlist_rate_limit_and_go_back(page) -> None:
    """Join the waitlist until the rate limit's page answers; its "Go back" steps back."""
    limited = page.get_by_role("heading", name="Slow down")
    joined = page.get_by_role("heading", name="You are on the list")
    for attempt in range(10):
        page.goto("/waitlist/")
        page.get_by_label("Email").fill(f"waiting-{attempt}@example.com")
        page.get_by_role("button", name="Join the waitlist").click()
        limited.or_(joined).wait_for()
        if limited.is_visible():
            break
    page.get_by_role("link", name="Go back").click()
    page.get_by_role("heading", name="Join the waitlist").wait_for()


def send_a_form_without_its_csrf_cookie(page, context) -> None:
    """The login form, its CSRF cookie gone: Salon's 403 page, not Django's inline-styled one."""
    page.goto("/accounts/login/")
    context.clear_cookies()
    page.get_by_label("Username or email").fill("leo")
    page.get_by_label("Password").fill("x-pass-12345")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="This form could not be sent").wait_for()


def sign_up_through_the_invitation_and_log_out(page, invitation_url: str) -> None:
    page.goto(invitation_url)
    page.get_by_role("button", name="Accept and create my account").click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Username").fill("newcomer")
    page.locator("#id_password1").fill("a-long-pass-phrase-81")
    page.locator("#id_password2").fill("a-long-pass-phrase-81")
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("button", name="Log out").wait_for()
    page.goto("/accounts/logout/")
    page.get_by_role("main").get_by_role("button", name="Log out").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in").wait_for()
