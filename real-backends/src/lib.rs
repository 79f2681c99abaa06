//! Real deployers (local processes, docker compose, kubernetes). Arrives with the promotion issue.
