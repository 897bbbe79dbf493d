"""The payment provider: its interface, its webhooks' signatures and events."""
