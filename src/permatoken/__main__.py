"""``python -m permatoken``: the same as the ``permatoken`` command."""

from permatoken.cli import main

if __name__ == "__main__":
    main()
