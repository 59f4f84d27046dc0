"""``python -m htap_sync ...``: the same command line as ``htap-sync``."""

from htap_sync.cli import main

if __name__ == "__main__":
    main()
