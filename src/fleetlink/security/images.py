"""OTA signatures: the image repository's release metadata, the director's per-car orders and
the download tokens that let one car read one image (Uptane's split of authority, simplified).

The car calls ``OtaTrust.refusal`` before it downloads a byte and checks the bytes against the
agreed length and SHA-256 after; the API checks a download token before it serves one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fleetlink.contracts.campaigns import DirectorOrder, ImageMetadata
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of
from fleetlink.contracts.purchases import firmware_key
from fleetlink.security.signing import SignatureError, b64url, canonical, key_id, unb64url

IMAGE_CONTEXT: Final = b"fleetlink/image/v1\n"
ORDER_CONTEXT: Final = b"fleetlink/order/v1\n"
DOWNLOAD_CONTEXT: Final = b"fleetlink/download/v1\n"


class DownloadClaim(msgspec.Struct, frozen=True):
    """What a download token allows: this car reads this image until ``exp`` (epoch ms)."""

    vin: str
    name: str
    version: str
    exp: int


_claim_decoder = decoder_of(DownloadClaim)


def _sign(key: Ed25519PrivateKey, context: bytes, record: msgspec.Struct) -> str:
    return b64url(key.sign(context + canonical(record)))


class ImageSigner:
    """The image repository's key: signs what it releases (``fleetlink ota publish``)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.kid = key_id(key.public_key())

    def sign(self, image: ImageMetadata) -> ImageMetadata:
        unsigned = msgspec.structs.replace(image, kid=self.kid, sig=None)
        return msgspec.structs.replace(unsigned, sig=_sign(self._key, IMAGE_CONTEXT, unsigned))


class DirectorSigner:
    """The director's online key: signs per-car orders and the tokens to download them."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.kid = key_id(key.public_key())

    def sign(self, order: DirectorOrder) -> DirectorOrder:
        unsigned = msgspec.structs.replace(order, kid=self.kid, sig=None)
        return msgspec.structs.replace(unsigned, sig=_sign(self._key, ORDER_CONTEXT, unsigned))

    def download_token(self, claim: DownloadClaim) -> str:
        body = canonical(claim)
        signature = self._key.sign(DOWNLOAD_CONTEXT + body)
        return f"{b64url(body)}.{self.kid}.{b64url(signature)}"


def _check(
    keys: Mapping[str, Ed25519PublicKey],
    context: bytes,
    record: ImageMetadata | DirectorOrder,
    what: str,
) -> None:
    if record.sig is None or record.kid is None:
        raise SignatureError(f"{what}-unsigned")
    key = keys.get(record.kid)
    if key is None:
        raise SignatureError(f"{what}-unknown-key")
    unsigned = msgspec.structs.replace(record, sig=None)
    try:
        key.verify(unb64url(record.sig), context + canonical(unsigned))
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{what}-bad-signature") from None


class OtaTrust:
    """The two OTA keys a car was given at registration, by key id."""

    def __init__(
        self,
        image_keys: Mapping[str, Ed25519PublicKey],
        director_keys: Mapping[str, Ed25519PublicKey],
    ) -> None:
        self._image_keys = dict(image_keys)
        self._director_keys = dict(director_keys)

    @classmethod
    def of(cls, image_key: Ed25519PublicKey, director_key: Ed25519PublicKey) -> OtaTrust:
        return cls({key_id(image_key): image_key}, {key_id(director_key): director_key})

    def refusal(
        self,
        image: ImageMetadata,
        order: DirectorOrder,
        *,
        vin: str,
        model: str,
        installed: str,
        now_ms: int,
    ) -> str | None:
        """Why the car must not take this update (a reason code with detail), or None."""
        try:
            _check(self._image_keys, IMAGE_CONTEXT, image, "image")
            _check(self._director_keys, ORDER_CONTEXT, order, "order")
        except SignatureError as error:
            return str(error)
        if order.vin != vin:
            return "order-other-vehicle"
        if now_ms >= order.expires_at:
            return "order-expired"
        agreed = (image.name, image.version, image.length, image.sha256)
        if agreed != (order.name, order.version, order.length, order.sha256):
            return "metadata-mismatch: the director and the image repository disagree"
        if image.target != model:
            return f"wrong-target: the image is for {image.target}, this car is a {model}"
        if firmware_key(image.version) < firmware_key(installed):
            return f"rollback: {image.version} is older than the installed {installed}"
        return None

    def read_download_token(self, token: str, now_ms: int) -> DownloadClaim:
        """The claim of a download token whose signature holds and which has not expired."""
        parts = token.split(".")
        if len(parts) != 3:
            raise SignatureError("token-malformed")
        body_text, kid, signature_text = parts
        key = self._director_keys.get(kid)
        if key is None:
            raise SignatureError("token-unknown-key")
        try:
            body = unb64url(body_text)
            key.verify(unb64url(signature_text), DOWNLOAD_CONTEXT + body)
            claim: DownloadClaim = decode_with(_claim_decoder, body)
        except (InvalidSignature, ValueError):
            raise SignatureError("token-bad-signature") from None
        except UndecodableError:
            raise SignatureError("token-malformed") from None
        if now_ms >= claim.exp:
            raise SignatureError("token-expired")
        return claim
