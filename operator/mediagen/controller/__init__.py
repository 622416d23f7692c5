"""The kopf operator: thin handlers (:mod:`.handlers`) feeding a supervisor of per-resource workers."""
