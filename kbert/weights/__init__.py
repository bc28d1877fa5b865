"""Name maps, checkpoint readers and writers."""
