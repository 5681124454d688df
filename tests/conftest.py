"""Shared test fixtures. Locust's pytest plugin imports locust (and so gevent's monkey patching)
before any test module, so every test runs in a patched process; servers run as subprocesses."""
