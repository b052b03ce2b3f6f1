from django.contrib.auth import get_user_model

from accounts.models import Follow
from tests.voicetweets.factories import sine_wav


def test_voice_message_reaches_the_open_conversation_without_reload(
    live_server_process, launch_browser, signed_in_context, tmp_path
):
    """Alice sends from the conversation page; it turns ready on her page ("Sent.") and appears,
    playable, on Bob's open conversation page, neither page reloading."""
    server = live_server_process()
    User = get_user_model()
    alice = User.objects.create_user(username="alice-e2e", display_name="Alice")
    bob = User.objects.create_user(username="bob-e2e", display_name="Bob")
    Follow.objects.create(follower=alice, followee=bob)
    Follow.objects.create(follower=bob, followee=alice)
    wav = tmp_path / "hello.wav"
    wav.write_bytes(sine_wav(4))
    browser = launch_browser()
    bob_page = signed_in_context(browser, server=server, user=bob).new_page()
    # The server greets a notification socket once it has joined the member's group.
    bob_page.add_init_script(
        """(() => {
            const Native = window.WebSocket;
            window.WebSocket = class extends Native {
                constructor(...args) {
                    super(...args);
                    this.addEventListener("message", (event) => {
                        if (JSON.parse(event.data).type === "hello") window.greeted = true;
                    });
                }
            };
        })()"""
    )
    bob_page.goto("/messages/alice-e2e/")
    alice_page = signed_in_context(browser, server=server, user=alice).new_page()
    alice_page.goto("/messages/bob-e2e/")
    navigations = []
    for page in (alice_page, bob_page):
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
    bob_page.wait_for_function("() => window.greeted === true")

    alice_page.get_by_label("…or upload a file").set_input_files(str(wav))
    alice_page.get_by_role("button", name="Send").click()

    alice_page.locator("article.voicemessage.mine[data-state=ready]").wait_for()
    alice_page.get_by_text("Sent.").wait_for()
    received = bob_page.locator("article.voicemessage[data-state=ready]")
    received.wait_for()
    assert received.get_by_role("button", name="Play voice message from Alice").count() == 1
    assert received.get_by_role("link", name="Report voice message from Alice").count() == 1
    assert navigations == []
