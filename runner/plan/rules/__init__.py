"""The rules only a whole plan allows, one family per module; `checks` runs them in turn."""
