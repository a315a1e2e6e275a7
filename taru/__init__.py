"""
Taru: a web service that runs preconfigured commands ("tasks") for the users
allowed to, and streams their output live.
"""

__version__ = "0.1.0"
