"""Signals workflows sends so that parts above it (jobs) add to its pages without workflows importing them."""

from django.dispatch import Signal

# Sent by the catalogue with `slugs` (the cards shown): a receiver answers {slug: picture}, a
# picture being {"url", "width", "height"}, for the cards it has a picture for, in a constant
# number of queries (jobs: the newest result its owner marked shareable).
card_pictures_wanted = Signal()
