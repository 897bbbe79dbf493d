"""What keeps a process honest: it exits when a thread it needs dies, remembers the input it
was handling when it crashed, and (in tests only) crashes on a marked input."""
