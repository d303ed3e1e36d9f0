"""Customer facts: written from every signal, read back for evaluation."""
