"""Known upstream weight files and a resumable, verifying downloader for them."""
