"""Features on demand: purchases, entitlements, and what turns features on and off."""
