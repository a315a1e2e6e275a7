from taru.cli import main

main()
