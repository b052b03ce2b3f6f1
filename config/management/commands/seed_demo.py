import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

DEMO_PASSWORD = "salon-demo"  # noqa: S105 - demo data, refused when DEBUG is off
ADMIN = ("admin", "Ada Admin")
MEMBERS = [
    ("alice", "Alice Liddell", "Hosts the Thursday product hour."),
    ("bob", "Bob Marley", "Listens more than he talks."),
    ("carol", "Carol Danvers", "Asks the hard questions."),
]


class Command(BaseCommand):
    help = "Create demo members and content. Idempotent: running it again changes nothing."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (never in production)."
        )
        # Only for the address printed at the end: the one `serve` will listen on.
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))

    def handle(self, *args, force: bool, host: str, port: int, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates accounts with known passwords; DEBUG is off.")
        from config.background import drain

        self._seed()
        drain()  # embedded mode: the recordings are processed before the command exits
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Log in at http://{shown}:{port}/"))
        self.stdout.write(f"  admin (staff): {ADMIN[0]} / {DEMO_PASSWORD}")
        for username, *_ in MEMBERS:
            self.stdout.write(f"  member:        {username} / {DEMO_PASSWORD}")

    @transaction.atomic
    def _seed(self) -> None:
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=ADMIN[0],
            defaults={
                "display_name": ADMIN[1],
                "email": "admin@salon.localhost",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save(update_fields=["password"])
        for username, display_name, bio in MEMBERS:
            member, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "display_name": display_name,
                    "bio": bio,
                    "email": f"{username}@salon.localhost",
                },
            )
            if created:
                member.set_password(DEMO_PASSWORD)
                member.save(update_fields=["password"])

        self._seed_accounts(admin)
        self._seed_spaces()
        self._seed_voices()

    def _seed_accounts(self, admin) -> None:
        """Invitations and follows among the demo members, made through the accounts services."""
        from accounts import services
        from accounts.models import Invitation

        User = get_user_model()
        members = {
            m.username: m for m in User.objects.filter(username__in=[u for u, *_ in MEMBERS])
        }
        for member in members.values():
            if member.invited_by_id is None:
                User.objects.filter(pk=member.pk).update(invited_by=admin)
        alice = members["alice"]
        if not Invitation.objects.filter(inviter=alice).exists():
            services.invitation_create(inviter=alice, email="friend@salon.localhost")
        for follower, followee in [("alice", "bob"), ("bob", "alice"), ("carol", "alice")]:
            services.follow_create(follower=members[follower], followee=members[followee])

    def _seed_spaces(self) -> None:
        """Alice may host (Space hosts group) and has a scheduled space; the bot (config.demo)
        hosts the live one, which `serve` keeps talking in the embedded mode."""
        from datetime import timedelta

        from django.contrib.auth.models import Group, Permission
        from django.utils import timezone

        from spaces import services
        from spaces.models import Space
        from spaces.selectors import HOSTS_GROUP

        alice = get_user_model().objects.get(username="alice")
        group, _ = Group.objects.get_or_create(name=HOSTS_GROUP)
        group.permissions.add(Permission.objects.get(codename="host_space"))
        alice.groups.add(group)
        alice = get_user_model().objects.get(pk=alice.pk)  # fresh permission cache
        hosted = Space.objects.filter(host=alice)
        if not hosted.filter(state=Space.State.SCHEDULED).exists():
            services.space_create(
                host=alice,
                title="Ask me anything",
                visibility="open",
                scheduled_start=timezone.now() + timedelta(days=1),
            )

    def _seed_voices(self) -> None:
        """What makes the demo alive: the bot and its live space, spoken clips (config.demo),
        voice tweets by the members, a conversation between alice and bob, and a replay.
        Recordings go through the real pipeline (processed at once in the embedded mode)."""
        from django.contrib.auth.models import Group
        from django.core.files.uploadedfile import SimpleUploadedFile

        from accounts.services import auth_token_issue
        from config import demo
        from spaces import services as spaces
        from spaces.models import Replay, Space
        from spaces.selectors import HOSTS_GROUP
        from voicetweets import services as voicetweets
        from voicetweets.models import VoiceMessage, VoiceTweet

        User = get_user_model()
        members = {
            m.username: m for m in User.objects.filter(username__in=[u for u, *_ in MEMBERS])
        }
        bot, created = User.objects.get_or_create(
            username=demo.BOT_USERNAME,
            defaults={"display_name": "Salon Radio", "bio": "The demo's host: a bot that talks."},
        )
        if created:
            bot.set_unusable_password()
            bot.save(update_fields=["password"])
            bot.groups.add(Group.objects.get(name=HOSTS_GROUP))
            bot = User.objects.get(pk=bot.pk)
        auth_token_issue(user=bot)
        folder = demo.demo_dir()
        kinds = {demo.speech_clip(folder / "bot.wav", demo.BOT_SCRIPT)}
        if not Space.objects.filter(host=bot, state=Space.State.LIVE).exists():
            spaces.space_create(host=bot, title=demo.BOT_SPACE_TITLE, visibility="open")

        said = {
            "alice": ("Good morning! Here is the plan for Thursday's product hour.", "en", 60),
            "bob": ("Hi everyone, Bob here. Listening more than talking, as usual.", "en-gb", 35),
            "carol": ("A hard question for the hour: who is this really for?", "en-us", 75),
        }
        clips = {}
        for username, (text, voice, pitch) in said.items():
            clips[username] = folder / f"{username}.wav"
            kinds.add(demo.speech_clip(clips[username], text, voice=voice, pitch=pitch))

        def upload(username: str) -> SimpleUploadedFile:
            return SimpleUploadedFile(f"{username}.wav", clips[username].read_bytes(), "audio/wav")

        for username, (text, *_rest) in said.items():
            if not VoiceTweet.objects.filter(author=members[username]).exists():
                voicetweets.voicetweet_create(
                    author=members[username], upload=upload(username), text=text[:80]
                )
        alice, bob = members["alice"], members["bob"]
        if not VoiceMessage.objects.filter(sender=bob, recipient=alice).exists():
            voicetweets.voicemessage_send(sender=bob, recipient=alice, upload=upload("bob"))
            voicetweets.voicemessage_send(sender=alice, recipient=bob, upload=upload("alice"))
        if not Replay.objects.filter(space__host=alice).exists():
            space = spaces.space_create(
                host=alice, title="Last week's product hour", visibility="open", is_recording=True
            )
            segment = spaces.replay_segment_start(space_id=space.pk)
            demo.record_replay(
                segment,
                [(alice.pk, clips["alice"]), (bob.pk, clips["bob"]), (alice.pk, clips["carol"])],
            )
            spaces.space_end(space=space, by=alice)
        if "tone" in kinds:
            self.stdout.write("espeak-ng is not installed: the demo voices are tones.")
