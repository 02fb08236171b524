#!/usr/bin/env python3
"""Push and pull with oras-py using only docker's config.json.

Usage: oras_docker_config.py HOST REPO WORKDIR

No login call: oras-py finds the credentials in ~/.docker/config.json
(HOME is set by the Rust test, crates/berth/tests/cli_cred_helper.rs),
through the credential helper named by credsStore. Prints one JSON object:
the pushed and pulled file digests and the tags.
"""

import hashlib
import json
import os
import sys

import oras.client


def main() -> int:
    host, repo, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    os.chdir(workdir)  # oras-py requires pushed paths relative to the cwd
    client = oras.client.OrasClient(hostname=host, insecure=True)
    with open("payload.bin", "wb") as f:
        f.write(os.urandom(2048))
    pushed = hashlib.sha256(open("payload.bin", "rb").read()).hexdigest()
    target = f"{host}/{repo}:v1"
    resp = client.push(
        target=target, files=["payload.bin:application/octet-stream"], quiet=True
    )
    assert resp.status_code == 201, f"push answered {resp.status_code}"
    files = client.pull(target=target, outdir=os.path.join(workdir, "pulled"))
    pulled = hashlib.sha256(open(files[0], "rb").read()).hexdigest()
    print(
        json.dumps(
            {"pushed": pushed, "pulled": pulled, "tags": client.get_tags(f"{host}/{repo}")}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
