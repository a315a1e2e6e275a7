"""
Runs C{taru-cli} as C{python -m taru.client}.
"""

from taru.client.main import main

main()
