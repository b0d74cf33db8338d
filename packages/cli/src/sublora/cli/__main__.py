"""`python -m sublora.cli ...` is `sublora ...` (torchrun starts each rank this way: `-m sublora.cli train`)."""

from sublora.cli.app import main

if __name__ == "__main__":
    main()
