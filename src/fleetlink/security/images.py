"""OTA signatures: the image repository's release metadata, the director's per-car orders and
the download tokens that let one car read one image (Uptane's split of authority, simplified).

The car calls ``OtaTrust.refusal`` before it downloads a byte and checks the bytes against the
agreed length and SHA-256 after; the API checks a download token before it serves one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fleetlink.contracts.campaigns import DirectorOrder, ImageMetadata
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of
from fleetlink.contracts.purchases import firmware_key
from fleetlink.security.signing import (
    SignatureError,
    b64url,
    canonical,
    check_record,
    key_id,
    signed_token,
    token_body,
)

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
        return signed_token(self._key, DOWNLOAD_CONTEXT, canonical(claim))


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
            check_record(self._image_keys, IMAGE_CONTEXT, image, prefix="image-")
            check_record(self._director_keys, ORDER_CONTEXT, order, prefix="order-")
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
        body = token_body(token, self._director_keys, DOWNLOAD_CONTEXT, what="token")
        try:
            claim: DownloadClaim = decode_with(_claim_decoder, body)
        except UndecodableError:
            raise SignatureError("token-malformed") from None
        if now_ms >= claim.exp:
            raise SignatureError("token-expired")
        return claim
