"""calbridge as a service: the push receiver, the subscriptions' lifecycle and (``Service``) the
scheduler that runs rounds on push and on time (``docs/design.md``)."""
