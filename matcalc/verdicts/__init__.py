"""Verdicts on a user's own derivation: reading claims (`claims`), step-by-step chains (`chain`) and
the verdict with its diagnosis (`verdict`)."""
