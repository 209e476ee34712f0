"""Test helpers that ship with Hanlin: a fake model upstream and recorded provider shapes."""
