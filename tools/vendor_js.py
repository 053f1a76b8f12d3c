"""Update the JavaScript the HTML viewer carries, from the npm registry (``make vendor-js``).

``src/dagrad/render/static/vendor.json`` names each vendored file: the npm
package and exact version it comes from, its path inside the package, and its
licence file. This script downloads each package's tarball with ``npm pack``
(no install scripts run), copies the named built file into ``static/``, and
records its SHA-256, which ``tests/test_viewer.py`` checks. To update a
library, change its ``version`` in vendor.json, run this, look at the viewer
(``pytest tests/test_viewer.py``), and commit the new file with vendor.json.

    python tools/vendor_js.py            # fetch and copy what vendor.json names
    python tools/vendor_js.py --check    # only verify the checksums of the files in static/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "src" / "dagrad" / "render" / "static"
RECORD = STATIC / "vendor.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(entry: dict, scratch: Path) -> None:
    spec = f"{entry['package']}@{entry['version']}"
    done = subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", str(scratch)],
                          capture_output=True, text=True, check=True)
    tarball = scratch / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        member = tar.getmember(f"package/{entry['path']}")
        data = tar.extractfile(member).read()
    (STATIC / entry["file"]).write_bytes(data)
    entry["sha256"] = sha256(STATIC / entry["file"])
    print(f"{entry['file']}: {spec} {entry['path']} ({len(data) // 1024} KiB)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only verify the recorded checksums")
    args = p.parse_args(argv)
    record = json.loads(RECORD.read_text())
    if args.check:
        bad = [e["file"] for e in record["files"] if sha256(STATIC / e["file"]) != e["sha256"]]
        print("checksums differ: " + ", ".join(bad) if bad else "all vendored files match vendor.json")
        return 1 if bad else 0
    with tempfile.TemporaryDirectory() as scratch:
        for entry in record["files"]:
            fetch(entry, Path(scratch))
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
