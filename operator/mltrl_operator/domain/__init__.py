"""The pure domain layer: MLTRL rules as functions of their inputs.

Nothing here talks to Kubernetes, reads the clock or does I/O, so the admission webhook,
the reconcilers and the tests all share one implementation of every rule. Functions that
need the time take `now`; the resources' models come from `mltrl_operator.api`.
"""
