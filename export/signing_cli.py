"""``s2f bundle keygen|sign|verify``: who made a bundle, checked offline with a key pair.

    s2f bundle keygen -o key.pem                 # key.pem (private, 0600) and key.pub
    s2f bundle sign bundle/ --key key.pem        # writes bundle/model.sig
    s2f bundle verify bundle/ --key key.pub      # the signature, then every file's sha256
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.config_flags import add_command, config_from_args

PASSWORD_HELP = "an encrypted key's passphrase is read from $S2F_SIGN_KEY_PASSWORD"


@dataclass(kw_only=True)
class KeygenCommand:
    """Args:
        output: private key file (key.pem).
        public: public key file (default: OUTPUT with .pub).
    """

    output: Path = field(metadata={"short": "-o"})
    public: Path | None = None


@dataclass(kw_only=True)
class SignCommand:
    """Args:
        bundle: bundle directory from 's2f export bundle'.
        key: private key (PEM, elliptic curve).
    """

    bundle: Path = field(metadata={"positional": True})
    key: Path


@dataclass(kw_only=True)
class VerifyCommand:
    """Args:
        bundle: bundle directory.
        key: trusted public key (default: $S2F_TRUST_KEY).
        verify_cache: trust the record of an earlier verification for files unchanged since (default); --rehash:
            hash every file.
    """

    bundle: Path = field(metadata={"positional": True})
    key: Path | None = None
    verify_cache: bool = field(default=True, metadata={"negative": "--rehash"})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bundle = subparsers.add_parser("bundle", help="sign bundles and verify them (OpenSSF model signing)")
    action = bundle.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_command(action, "keygen", KeygenCommand, run_keygen, extras=("signing",), what_runs="bundle keygen",
                help="a new elliptic-curve (P-256) key pair",
                description="Write a private key (PEM, readable by you only) and its public key. With "
                            "$S2F_SIGN_KEY_PASSWORD set, the private key is encrypted with it.")

    add_command(action, "sign", SignCommand, run_sign, extras=("signing",), what_runs="bundle sign",
                help="sign a bundle: writes DIR/model.sig",
                description="Check every file of the bundle against its manifest, then sign the "
                            "sha256 of every file with OpenSSF model signing (key-pair method: "
                            "offline, no transparency log). 'model_signing verify key' accepts the "
                            f"result too. {PASSWORD_HELP}.")

    add_command(action, "verify", VerifyCommand, run_verify, what_runs="bundle verify",
                help="check a bundle's signature and every file's sha256",
                description="Refuse the bundle unless it is signed by the key and holds exactly the files signed, then"
                            " hash every file against the manifest. Without a key, only the sha256 are checked.")


def run_keygen(args: argparse.Namespace) -> int:
    from s2f.export.signing import generate_key_pair

    command = config_from_args(KeygenCommand, args)
    private, public = generate_key_pair(command.output, command.public)
    print(f"private key {private} (keep it secret); public key {public} (give it to whoever runs your bundles)")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from s2f.export.signing import sign_bundle
    from s2f.runtime.bundle.manifest import SIGNATURE

    command = config_from_args(SignCommand, args)
    fingerprint = sign_bundle(command.bundle, command.key)
    print(f"{command.bundle / SIGNATURE}: signed by key {fingerprint[:16]} ({command.key})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from s2f.core.extras import require
    from s2f.runtime.bundle.manifest import SIGNATURE
    from s2f.runtime.bundle.reader import open_bundle
    from s2f.runtime.bundle.signature import trusted_key

    command = config_from_args(VerifyCommand, args)
    key = trusted_key(command.key)
    if key is not None:
        require(f"checking a bundle signature ({key})", "signing")
    bundle = open_bundle(command.bundle, verify=True, cache=command.verify_cache, trust_key=key or False)
    files = f"{len(bundle.manifest.files)} files match the manifest's sha256"
    if bundle.signed_by:
        print(f"{command.bundle}: signed by key {bundle.signed_by[:16]} ({key}), covering every file; {files}")
    else:
        signed = "has a signature (not checked: pass --key)" if (command.bundle / SIGNATURE).exists() else "is unsigned"
        print(f"{command.bundle}: {files}; it {signed}")
    return 0
