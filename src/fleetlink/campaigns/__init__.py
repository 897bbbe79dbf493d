"""OTA campaigns: the image repository, the rollout's rules and the orchestrator that runs them."""
