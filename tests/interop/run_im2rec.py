"""Run the im2rec.py that ships inside the installed mxnet wheel.

Usage: run_im2rec.py ARGS...

All arguments go to im2rec.py unchanged; it runs under this same interpreter
(sys.executable). Its stdout/stderr are inherited (so forwarded as-is) and its
exit code is ours (a death by signal N becomes 128+N). Lets tests run the real
im2rec without knowing where the wheel put it.
"""
import importlib.util
import os
import subprocess
import sys


def im2rec_path():
    # Locate the package without importing it (importing mxnet takes seconds).
    spec = importlib.util.find_spec("mxnet")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "tools", "im2rec.py")
        if os.path.isfile(path):
            return path
    import mxnet.test_utils
    return mxnet.test_utils.get_im2rec_path()


def main():
    try:
        path = im2rec_path()
    except Exception as e:  # noqa: BLE001 - report any failure in one line
        print(f"run_im2rec.py: cannot locate im2rec.py: {e}", file=sys.stderr)
        return 2
    rc = subprocess.run([sys.executable, path] + sys.argv[1:]).returncode
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
