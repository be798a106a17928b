"""``python -m wecom_actors ...``: the same as the ``wecom-actors`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
