"""Generation backends: Replicate (real API) and mock (local placeholder images), behind one interface."""
