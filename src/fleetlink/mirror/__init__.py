"""Watching MirrorMaker 2 from its target side: replication lag, and records lost to retention."""
