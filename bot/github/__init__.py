"""The GitHub adapter: the only package that talks to GitHub (githubkit) and registers the App."""
