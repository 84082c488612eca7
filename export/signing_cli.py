"""``s2f bundle keygen|sign|verify``: who made a bundle, checked offline with a key pair.

    s2f bundle keygen -o key.pem                 # key.pem (private, 0600) and key.pub
    s2f bundle sign bundle/ --key key.pem        # writes bundle/model.sig
    s2f bundle verify bundle/ --key key.pub      # the signature, then every file's sha256
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s2f.runtime.bundle.signature import TRUST_KEY_ENV

PASSWORD_HELP = "an encrypted key's passphrase is read from $S2F_SIGN_KEY_PASSWORD"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bundle = subparsers.add_parser("bundle", help="sign bundles and verify them (OpenSSF model signing)")
    action = bundle.add_subparsers(dest="action", metavar="ACTION", required=True)
    keygen = action.add_parser("keygen", help="a new elliptic-curve (P-256) key pair",
                               description="Write a private key (PEM, readable by you only) and its public key. "
                                           "With $S2F_SIGN_KEY_PASSWORD set, the private key is encrypted with it.")
    keygen.add_argument("-o", "--output", type=Path, required=True, help="private key file (key.pem)")
    keygen.add_argument("--public", type=Path, help="public key file (default: OUTPUT with .pub)")
    keygen.set_defaults(func=run_keygen, extras=("signing",), what_runs="bundle keygen")

    sign = action.add_parser("sign", help="sign a bundle: writes DIR/model.sig",
                             description="Check every file of the bundle against its manifest, then sign the "
                                         "sha256 of every file with OpenSSF model signing (key-pair method: "
                                         "offline, no transparency log). 'model_signing verify key' accepts the "
                                         f"result too. {PASSWORD_HELP}.")
    sign.add_argument("bundle", type=Path, help="bundle directory from 's2f export bundle'")
    sign.add_argument("--key", type=Path, required=True, help="private key (PEM, elliptic curve)")
    sign.set_defaults(func=run_sign, extras=("signing",), what_runs="bundle sign")

    verify = action.add_parser("verify", help="check a bundle's signature and every file's sha256",
                               description="Refuse the bundle unless it is signed by the key and holds exactly the "
                                           "files signed, then hash every file against the manifest. Without a "
                                           "key, only the sha256 are checked.")
    verify.add_argument("bundle", type=Path, help="bundle directory")
    verify.add_argument("--key", type=Path, help=f"trusted public key (default: ${TRUST_KEY_ENV})")
    verify.add_argument("--rehash", action="store_true",
                        help="hash every file even if it was verified before and is unchanged since")
    verify.set_defaults(func=run_verify, what_runs="bundle verify")


def run_keygen(args: argparse.Namespace) -> int:
    from s2f.export.signing import generate_key_pair

    private, public = generate_key_pair(args.output, args.public)
    print(f"private key {private} (keep it secret); public key {public} (give it to whoever runs your bundles)")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from s2f.export.signing import sign_bundle
    from s2f.runtime.bundle.manifest import SIGNATURE

    fingerprint = sign_bundle(args.bundle, args.key)
    print(f"{args.bundle / SIGNATURE}: signed by key {fingerprint[:16]} ({args.key})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from s2f.core.extras import require
    from s2f.runtime.bundle.manifest import SIGNATURE
    from s2f.runtime.bundle.reader import open_bundle
    from s2f.runtime.bundle.signature import trusted_key

    key = trusted_key(args.key)
    if key is not None:
        require(f"checking a bundle signature ({key})", "signing")
    bundle = open_bundle(args.bundle, verify=True, cache=not args.rehash, trust_key=key or False)
    files = f"{len(bundle.manifest.files)} files match the manifest's sha256"
    if bundle.signed_by:
        print(f"{args.bundle}: signed by key {bundle.signed_by[:16]} ({key}), covering every file; {files}")
    else:
        signed = "has a signature (not checked: pass --key)" if (args.bundle / SIGNATURE).exists() else "is unsigned"
        print(f"{args.bundle}: {files}; it {signed}")
    return 0
