"""make e2e's tooling: the servers the tooling image runs as pods (the fake Replicate, S3, an HTTPS webhook relay)
and the bench/results.json ``e2e`` entry."""
