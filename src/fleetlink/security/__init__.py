"""Identities, access rules, signatures and tokens: who may do what, and the proof of it."""
