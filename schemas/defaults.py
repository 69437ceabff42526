"""The installation's defaults that a command needs before anything heavy is imported: where
the reference data and the codebooks shipped with the project are, and from which size a file
is streamed rather than held in memory."""

from pathlib import Path

DEFAULT_REFERENCE_DIR = Path(__file__).with_name("reference")
DEFAULT_CODEBOOK_DIR = Path(__file__).with_name("codebooks")
STREAM_ABOVE_BYTES = 256 * 1024 * 1024  # files of this size or more are streamed, never held
