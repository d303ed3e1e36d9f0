"""Pure rules of the segments service: customer facts, the rule language, lifecycle and built-in segments."""
