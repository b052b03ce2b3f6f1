"""The bell: every member's stored notifications, from any app, and their live push.

A leaf app: it may import accounts (the bottom layer) and nothing above it. Spaces, voice tweets
and accounts call ``notifications.services`` to notify; a notification points at its target
through a content type, so this app names none of their models.
"""
