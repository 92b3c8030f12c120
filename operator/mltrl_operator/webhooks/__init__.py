"""Admission webhooks: gates a user cannot bypass."""
