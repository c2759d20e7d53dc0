"""Presentation: the step-by-step derivation rendered from the engine's trace (`derivation`), rule
labels in English and Chinese (`labels`), named common sub-expressions (`share`), one formatter per
output form (`formats`) and `matcalc notes` (`notes`)."""
