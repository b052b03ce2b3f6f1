from django import template

from spaces.selectors import hallway, user_can_host

register = template.Library()


@register.inclusion_tag("spaces/_hallway.html", takes_context=True)
def space_hallway(context):
    """The home page's hallway: live spaces of people you follow first, then open ones."""
    user = context["user"]
    return {"hallway": hallway(user=user), "can_host": user_can_host(user=user)}
