"""Pure decision logic: no I/O, no clock, no framework. See ARCHITECTURE.md."""
