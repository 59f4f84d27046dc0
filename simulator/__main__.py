"""``python -m htap_sync.simulator [options]``: the same command as ``htap-sync simulator``."""

from htap_sync.simulator.cli import main

if __name__ == "__main__":
    main()
