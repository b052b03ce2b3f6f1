import pytest

PASSWORD = "a-long-test-password-42"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the shared Redis cache; each test starts from zero."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_member(db):
    """Create a member the way a signed-up one looks (an invitation quota, a usable password)."""

    from accounts.models import User

    def make(username: str, **fields) -> "User":
        return User.objects.create_user(
            username=username, email=f"{username}@example.org", password=PASSWORD, **fields
        )

    return make


@pytest.fixture
def alice(make_member):
    return make_member("alice", display_name="Alice")


@pytest.fixture
def bob(make_member):
    return make_member("bob")


@pytest.fixture
def staff(make_member):
    return make_member("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def invitation(alice):
    from accounts import services

    return services.invitation_create(inviter=alice)
