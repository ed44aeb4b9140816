"""Channel adapters (WhatsApp, API, ...), the channel registry, sessions and outbound pacing."""
