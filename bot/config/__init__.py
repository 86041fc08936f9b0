"""Repository configuration: the schema of `.github/senior-review.yml`, its layers and path globs."""
