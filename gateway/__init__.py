"""triage-gateway: A/B routing inference gateway for LLM triage of app-store reviews."""

__version__ = "0.1.0"
