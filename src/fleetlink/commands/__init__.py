"""Remote commands: the lifecycle (pure), and later the tracker process and the downlink."""
