"""Downloading model outputs and copying them into the object store.

:mod:`.url_policy` decides where outputs may be fetched from (the SSRF policy, DNS pinning); :mod:`.data_uri`
decodes inline ``data:`` outputs; :mod:`.downloader` opens an output as a byte stream; :mod:`.copy` streams it
into the store; :mod:`.errors` says why something failed.
"""

from mediagen.transfer.copy import collect_output_urls, copy_output
from mediagen.transfer.downloader import Download, Downloader, make_download_client
from mediagen.transfer.errors import TransferError
from mediagen.transfer.url_policy import DownloadPolicy, Resolver

__all__ = [
    "Download",
    "DownloadPolicy",
    "Downloader",
    "Resolver",
    "TransferError",
    "collect_output_urls",
    "copy_output",
    "make_download_client",
]
