#!/usr/bin/env python3
"""Drive oras-py (PyPI package `oras`) against a running berth.

Usage: oras_referrers.py HOST REPO WORKDIR

Pushes an artifact (two files), pulls it back, attaches a referrer (an
artifact whose manifest has `subject` = the first artifact's manifest) and
prints one JSON object on stdout describing what was pushed, for the Rust
test (crates/berth/tests/interop_oras.rs) to check against berth's
referrers API. Credentials, once berth needs them, come from the
environment: BERTH_TEST_USERNAME / BERTH_TEST_PASSWORD.
"""

import hashlib
import json
import os
import sys

import oras.client
import oras.oci

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main() -> int:
    host, repo, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    os.chdir(workdir)  # oras-py requires pushed paths relative to the cwd
    client = oras.client.OrasClient(hostname=host, insecure=True)
    user = os.environ.get("BERTH_TEST_USERNAME")
    if user:
        client.login(
            username=user,
            password=os.environ.get("BERTH_TEST_PASSWORD", ""),
            hostname=host,
            tls_verify=False,
        )

    with open("hello.txt", "wb") as f:
        f.write(b"hello from oras-py\n")
    with open("data.bin", "wb") as f:
        f.write(os.urandom(4096))
    target = f"{host}/{repo}:v1"
    resp = client.push(
        target=target,
        files=["hello.txt:text/plain", "data.bin:application/octet-stream"],
        manifest_annotations={"org.example.what": "artifact"},
        quiet=True,
    )
    assert resp.status_code == 201, f"push answered {resp.status_code}"

    # The exact bytes berth stored, and their digest.
    raw = client.do_request(
        f"http://{host}/v2/{repo}/manifests/v1", "GET", headers={"Accept": MANIFEST}
    )
    assert raw.status_code == 200, raw.status_code
    subject_digest = "sha256:" + hashlib.sha256(raw.content).hexdigest()
    assert raw.headers.get("Docker-Content-Digest") in (None, subject_digest)

    # Pull it back with oras-py and compare the files.
    out = os.path.join(workdir, "pulled")
    files = client.pull(target=target, outdir=out)
    pulled = {os.path.basename(p): open(p, "rb").read() for p in files}
    assert pulled["hello.txt"] == open("hello.txt", "rb").read()
    assert pulled["data.bin"] == open("data.bin", "rb").read()

    # Attach a referrer: config media type gives the artifactType.
    with open("sig.json", "wb") as f:
        f.write(b'{"signed": true}')
    with open("config.json", "wb") as f:
        f.write(b"{}")
    subject = oras.oci.Subject(
        mediaType=MANIFEST, digest=subject_digest, size=len(raw.content)
    )
    resp = client.push(
        target=f"{host}/{repo}:signature",
        files=["sig.json:application/vnd.example.signature.payload"],
        manifest_config="config.json:application/vnd.example.signature.v1",
        manifest_annotations={"org.example.signer": "berth-tests"},
        subject=subject,
        quiet=True,
    )
    assert resp.status_code == 201, f"referrer push answered {resp.status_code}"
    oci_subject = resp.headers.get("OCI-Subject")
    ref_raw = client.do_request(
        f"http://{host}/v2/{repo}/manifests/signature",
        "GET",
        headers={"Accept": MANIFEST},
    )
    referrer_digest = "sha256:" + hashlib.sha256(ref_raw.content).hexdigest()

    print(
        json.dumps(
            {
                "subject_digest": subject_digest,
                "referrer_digest": referrer_digest,
                "referrer_size": len(ref_raw.content),
                "oci_subject_header": oci_subject,
                "tags": client.get_tags(f"{host}/{repo}"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
