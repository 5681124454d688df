"""The suite's locustfile for ``locust -f locustfiles``: Locust imports every ``*.py`` file here whose
name does not start with ``_``, so this folder holds ``locustfile.py`` alone; the load generator itself
is the ``loadgen`` package.
"""
