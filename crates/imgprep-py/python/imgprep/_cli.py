"""The `imgprep` command of the wheel: the same Rust entry point as the binary."""

import signal
import sys


def main() -> None:
    from . import _native

    # Ctrl-C ends the command at once, as it ends the binary (Python's own
    # handler would only set a flag that the Rust code never looks at)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_native.cli_main(["imgprep", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
