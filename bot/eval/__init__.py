"""`python -m bot eval`: measure the reviewer on seeded pull requests (recall, precision, noise, tokens, cost)."""
