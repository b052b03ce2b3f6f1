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

    @transaction.atomic
    def handle(self, *args, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates accounts with known passwords; DEBUG is off.")
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

        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/"))
        self.stdout.write(f"  admin (staff): {ADMIN[0]} / {DEMO_PASSWORD}")
        for username, *_ in MEMBERS:
            self.stdout.write(f"  member:        {username} / {DEMO_PASSWORD}")

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
        """Alice may host (Space hosts group) and has a live open space and a scheduled one.

        The live space ends by itself five minutes after nobody hosts it (the host grace period);
        running seed_demo again opens a new one.
        """
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
        if not hosted.filter(state=Space.State.LIVE).exists():
            services.space_create(host=alice, title="Thursday product hour", visibility="open")
        if not hosted.filter(state=Space.State.SCHEDULED).exists():
            services.space_create(
                host=alice,
                title="Ask me anything",
                visibility="open",
                scheduled_start=timezone.now() + timedelta(days=1),
            )
