#!/usr/bin/env python3
"""A KMS-compatible server for the signing tests: moto's server, made to sign as AWS KMS does.

    kms_server.py serve --port PORT          run moto's server on 127.0.0.1:PORT (foreground;
                                             the caller stops it by its PID)
    kms_server.py create-key --endpoint URL --spec SPEC [--alias alias/NAME]
                                             create a SIGN_VERIFY key (ECC_NIST_P256, RSA_3072,
                                             ...), print its KeyId

moto (5.2.x) differs from AWS KMS in four ways that matter to a TUF signer, each of which
would make a correct client fail or a wrong one pass:

  1. MessageType=DIGEST is not implemented: moto hashes the digest again, so a DIGEST
     signature never verifies as a signature of the message. AWS signs the digest as given.
  2. RSASSA_PSS_* signatures use the largest salt; AWS uses a salt as long as the digest,
     which is what TUF verifiers (securesystemslib, aws-lc-rs, ring) require.
  3. RAW messages longer than 4096 bytes and DIGEST messages of the wrong length are
     accepted; AWS rejects both with a ValidationException.
  4. GetPublicKey answers with the deprecated CustomerMasterKeySpec only; AWS sends KeySpec
     too, and tough-kms reads KeySpec (it fails with MissingKeySpec without it).

`serve` replaces moto's Sign handler with one that behaves as AWS does on points 1 to 3,
and adds KeySpec to GetPublicKey's answer (point 4) (keys, key policy checks and every other operation stay moto's). If moto's internals
moved, it says so and exits non-zero instead of serving a server that signs differently.
Credentials: any (AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing).
"""

import argparse
import base64
import json
import sys

MAX_RAW = 4096


def patch_moto() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    if not callable(getattr(KmsResponse, "sign", None)):
        sys.exit("kms_server.py: moto's KmsResponse.sign is gone; update the patch for this moto")

    def sign(self) -> str:
        key_id = self._get_param("KeyId")
        message = self._get_param("Message") or b""
        message_type = self._get_param("MessageType") or "RAW"
        algorithm = self._get_param("SigningAlgorithm") or ""
        self._validate_key_id(key_id)
        if isinstance(message, str):
            message = message.encode("utf-8")
        if not message:
            raise ValidationException("Message must have length greater than or equal to 1")
        if message_type == "RAW" and len(message) > MAX_RAW:
            raise ValidationException(
                "1 validation error detected: Value at 'message' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_RAW}")
        digest = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}.get(
            algorithm[-3:])
        if digest is None:
            raise ValidationException(f"unsupported SigningAlgorithm {algorithm!r}")
        digest = digest()
        if message_type == "DIGEST" and len(message) != digest.digest_size:
            raise ValidationException(
                f"Digest is invalid length for algorithm {algorithm}.")
        key = self.kms_backend.describe_key(key_id)
        if key.key_usage != "SIGN_VERIFY" or algorithm not in key.signing_algorithms:
            raise ValidationException(
                f"key {key_id} cannot sign with {algorithm} (usage {key.key_usage}, "
                f"algorithms {key.signing_algorithms})")
        private = getattr(getattr(key, "private_key", None), "private_key", None)
        if private is None:
            raise ValidationException("kms_server.py: moto's key object changed; update the patch")
        how = Prehashed(digest) if message_type == "DIGEST" else digest
        if algorithm.startswith("ECDSA"):
            signature = private.sign(message, ec.ECDSA(how))
        elif algorithm.startswith("RSASSA_PSS"):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            signature = private.sign(message, pss, how)
        else:
            signature = private.sign(message, padding.PKCS1v15(), how)
        return json.dumps({
            "KeyId": key.arn,
            "Signature": base64.b64encode(signature).decode("ascii"),
            "SigningAlgorithm": algorithm,
        })

    KmsResponse.sign = sign

    original_get_public_key = KmsResponse.get_public_key

    def get_public_key(self) -> str:
        answer = json.loads(original_get_public_key(self))
        answer.setdefault("KeySpec", answer.get("CustomerMasterKeySpec"))
        return json.dumps(answer)

    KmsResponse.get_public_key = get_public_key


def serve(port: int) -> None:
    patch_moto()
    from moto.server import main as moto_main
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


def create_key(endpoint: str, spec: str, alias: str | None) -> None:
    import boto3
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=key)
    print(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("create-key")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--spec", required=True)
    p.add_argument("--alias")
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.port)
    else:
        create_key(args.endpoint, args.spec, args.alias)


if __name__ == "__main__":
    main()
